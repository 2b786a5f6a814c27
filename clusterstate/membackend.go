package clusterstate

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// MemBackend keeps the metadata in memory, shared by every State opened
// on it: the stand-in for etcd when several brokers run in one process
// (tests, and replication developed before the etcd backend). Save is
// guarded by the revision like an etcd transaction, and Watch delivers
// every image saved after a revision, to every watcher (a State ignores
// its own saves by revision). Images are copied through JSON, so no two
// States share maps.
type MemBackend struct {
	mu      sync.Mutex // leaf; no I/O
	data    []byte     // JSON of the image; nil: nothing stored
	rev     Revision
	changed chan struct{} // closed and replaced by every Save
}

// NewMemBackend returns an empty backend.
func NewMemBackend() *MemBackend { return &MemBackend{changed: make(chan struct{})} }

// Load returns the stored image and its revision.
func (b *MemBackend) Load(context.Context) (Image, Revision, error) {
	b.mu.Lock()
	data, rev := b.data, b.rev
	b.mu.Unlock()
	var img Image
	if data == nil {
		return img, 0, nil
	}
	if err := json.Unmarshal(data, &img); err != nil {
		return img, 0, fmt.Errorf("clusterstate: decoding in-memory metadata: %w", err)
	}
	return img, rev, nil
}

// Save stores img if the stored revision is still expect.
func (b *MemBackend) Save(_ context.Context, img Image, expect Revision) (Revision, error) {
	data, err := json.Marshal(img)
	if err != nil {
		return expect, fmt.Errorf("clusterstate: encoding metadata: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rev != expect {
		return b.rev, fmt.Errorf("%w: stored revision %d, expected %d", ErrConflict, b.rev, expect)
	}
	b.data = data
	b.rev++
	close(b.changed)
	b.changed = make(chan struct{})
	return b.rev, nil
}

// Update applies change to the stored image in one revision-guarded
// step, retrying on conflicts: what a controller does when it moves a
// leader. Tests use it to set assignments.
func (b *MemBackend) Update(ctx context.Context, change func(*Image)) (Revision, error) {
	for {
		img, rev, err := b.Load(ctx)
		if err != nil {
			return 0, err
		}
		change(&img)
		nrev, err := b.Save(ctx, img, rev)
		if err == nil || ctx.Err() != nil {
			return nrev, err
		}
	}
}

// Watch delivers the newest image whenever the revision passes the last
// one delivered (intermediate images may be skipped: each is whole),
// until ctx ends.
func (b *MemBackend) Watch(ctx context.Context, from Revision) <-chan Update {
	out := make(chan Update)
	go func() {
		defer close(out)
		last := from
		for {
			b.mu.Lock()
			rev, changed := b.rev, b.changed
			b.mu.Unlock()
			if rev > last {
				img, rev, err := b.Load(ctx)
				if err == nil && rev > last {
					select {
					case out <- Update{Image: img, Revision: rev}:
						last = rev
					case <-ctx.Done():
						return
					}
					continue
				}
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
