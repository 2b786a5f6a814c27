package clusterstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/skiffmq/skiff/storage"
)

// Image is the persisted form of the cluster metadata. Its JSON encoding
// is meta.json's format, unchanged since before this package existed
// except for Features, which is added.
type Image struct {
	ClusterID string       `json:"cluster_id"`
	Topics    []ImageTopic `json:"topics"`
	Quotas    []Quota      `json:"client_quotas,omitempty"`
	// GroupConfigs are the GROUP resource configs (share.*) by group.
	GroupConfigs map[string]map[string]string `json:"group_configs,omitempty"`
	// Features is absent in a meta.json written before feature levels;
	// such a cluster loads with the initial levels.
	Features *Features `json:"features,omitempty"`
}

// ImageTopic is one topic in an Image.
type ImageTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"` // base64, as Kafka prints topic ids
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	// Assignments, one per partition, are stored only by a replicated
	// State (Options.Replicated); a one-node meta.json has none.
	Assignments []Assignment `json:"assignments,omitempty"`
}

// Revision orders the versions of the stored metadata. 0 means nothing is
// stored yet. A backend shared by several brokers (etcd) uses it to refuse
// a write based on a version someone else has since replaced.
type Revision int64

// ErrConflict is returned by Backend.Save when the stored revision is not
// the one the caller based its change on.
var ErrConflict = errors.New("clusterstate: metadata changed concurrently")

// Backend stores the cluster metadata. State calls it without holding any
// lock that a request path takes, so an implementation may block on disk
// or network.
//
// The file implementation is the only writer of its file; an etcd
// implementation would map Save to a transaction guarded on expect (the
// image's keys' mod revision), return ErrConflict when the guard fails,
// and deliver other brokers' changes through Watch.
type Backend interface {
	// Load returns the stored image and its revision, or an empty image
	// and revision 0 when nothing is stored yet.
	Load(ctx context.Context) (Image, Revision, error)
	// Save stores img if the stored revision is still expect, and
	// returns the new revision. After Save returns nil, img survives a
	// crash.
	Save(ctx context.Context, img Image, expect Revision) (Revision, error)
	// Watch delivers images stored by others after revision from, until
	// ctx ends. A backend with a single writer returns nil (a channel
	// that never delivers).
	Watch(ctx context.Context, from Revision) <-chan Update
}

// Update is an image written by another party, at its revision.
type Update struct {
	Image    Image
	Revision Revision
}

// FileName is the file the local backend keeps the metadata in.
const FileName = "meta.json"

// FileBackend keeps the metadata in one JSON file, replaced atomically
// (temp file, fsync, rename, fsync of the directory) on every Save. It is
// the single writer of that file, so the revision is just a count of the
// saves since Load.
type FileBackend struct {
	fs     storage.FS
	path   string
	rev    atomic.Int64
	writes atomic.Int64
}

// NewFileBackend returns a backend keeping the metadata in path on fsys
// (nil: storage.OSFS). The broker passes its store's FS, so that the
// crash- and fault-injecting MemFS covers meta.json like the logs.
func NewFileBackend(fsys storage.FS, path string) *FileBackend {
	if fsys == nil {
		fsys = storage.OSFS
	}
	return &FileBackend{fs: fsys, path: path}
}

// Path is the file's path.
func (b *FileBackend) Path() string { return b.path }

// Writes counts the saves, so that tests can check how often a change
// persists.
func (b *FileBackend) Writes() int64 { return b.writes.Load() }

// Load reads the file.
func (b *FileBackend) Load(context.Context) (Image, Revision, error) {
	var img Image
	data, err := b.fs.ReadFile(b.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return img, 0, nil
	case err != nil:
		return img, 0, fmt.Errorf("clusterstate: reading cluster metadata: %w", err)
	}
	if err := json.Unmarshal(data, &img); err != nil {
		// It is only ever replaced atomically, so this is damage from
		// outside. Starting without it would forget every topic and
		// remove their partition directories as strays.
		return img, 0, fmt.Errorf("clusterstate: cluster metadata %s is corrupt (%w); restore it from a backup "+
			"(do not delete it: without it every topic is forgotten and its partition directories removed)", b.path, err)
	}
	b.rev.Store(1)
	return img, 1, nil
}

// Save writes img atomically.
func (b *FileBackend) Save(_ context.Context, img Image, expect Revision) (Revision, error) {
	if cur := Revision(b.rev.Load()); cur != expect {
		return cur, fmt.Errorf("%w: stored revision %d, expected %d", ErrConflict, cur, expect)
	}
	data, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return expect, fmt.Errorf("clusterstate: encoding cluster metadata: %w", err)
	}
	b.writes.Add(1)
	if err := storage.WriteFileAtomicFS(b.fs, b.path, data); err != nil {
		return expect, fmt.Errorf("clusterstate: saving cluster metadata: %w", err)
	}
	return Revision(b.rev.Add(1)), nil
}

// Watch returns nil: nobody else writes the file.
func (b *FileBackend) Watch(context.Context, Revision) <-chan Update { return nil }
