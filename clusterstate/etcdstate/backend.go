package etcdstate

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/clusterstate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Backend stores the cluster metadata in etcd under a key prefix: one key
// for what is cluster-wide (cluster id, quotas, group configs, features)
// and one per topic, so that brokers changing different topics never
// conflict and a leader election rewrites one small key.
//
//	<prefix>meta            clusterstate.Image without Topics
//	<prefix>topics/<name>   clusterstate.ImageTopic (with Assignments)
//
// Save writes only the keys whose value differs from the image the
// change was based on, in one transaction guarded on each of those keys'
// ModRevision as it was then (0 for a key that must not exist yet): a
// key someone else changed since fails the whole save with
// clusterstate.ErrConflict. Watch delivers the whole image after each
// change under the prefix.
type Backend struct {
	cli    *clientv3.Client
	prefix string
	log    zerolog.Logger

	// mu guards snaps; leaf, no I/O (etcd calls happen outside it).
	mu sync.Mutex
	// snaps are the key sets of the images handed out (by Load, Save and
	// Watch), by revision, so that Save can diff against the one its
	// change was based on. Only the newest few are kept: a State always
	// saves on top of the last image it took.
	snaps map[clusterstate.Revision]keySet
	order []clusterstate.Revision
}

// maxSnaps bounds Backend.snaps.
const maxSnaps = 64

// entry is one stored key's value and the revision it was written at.
type entry struct {
	value []byte
	mod   int64
}

// keySet is the stored keys under the prefix, by key without the prefix;
// never modified once recorded.
type keySet map[string]entry

const (
	metaKey      = "meta"
	topicsPrefix = "topics/"
)

// NewBackend returns a backend keeping the metadata under prefix (for
// example "/skiff/"). The client stays the caller's to close.
func NewBackend(cli *clientv3.Client, prefix string, logger zerolog.Logger) *Backend {
	return &Backend{cli: cli, prefix: prefix, log: logger, snaps: map[clusterstate.Revision]keySet{}}
}

// opTimeout bounds one etcd call: a cluster without quorum fails a
// metadata change instead of hanging the request.
const opTimeout = 10 * time.Second

// Load reads every key under the prefix at one revision.
func (b *Backend) Load(ctx context.Context) (clusterstate.Image, clusterstate.Revision, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := b.cli.Get(ctx, b.prefix, clientv3.WithPrefix())
	if err != nil {
		return clusterstate.Image{}, 0, fmt.Errorf("etcdstate: loading cluster metadata: %w", err)
	}
	ks := keySet{}
	for _, kv := range resp.Kvs {
		if k, ok := b.imageKey(kv.Key); ok {
			ks[k] = entry{value: kv.Value, mod: kv.ModRevision}
		}
	}
	img, err := decode(ks)
	if err != nil {
		return img, 0, err
	}
	rev := clusterstate.Revision(resp.Header.Revision)
	b.remember(rev, ks)
	return img, rev, nil
}

// Save stores the keys of img that differ from the image at expect.
func (b *Backend) Save(ctx context.Context, img clusterstate.Image, expect clusterstate.Revision) (clusterstate.Revision, error) {
	b.mu.Lock()
	base, ok := b.snaps[expect]
	b.mu.Unlock()
	if !ok && expect != 0 {
		return expect, fmt.Errorf("%w: revision %d is no longer known", clusterstate.ErrConflict, expect)
	}
	next, err := encode(img)
	if err != nil {
		return expect, err
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for k, v := range next {
		old, had := base[k]
		if had && string(old.value) == string(v.value) {
			continue
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(b.prefix+k), "=", old.mod))
		ops = append(ops, clientv3.OpPut(b.prefix+k, string(v.value)))
	}
	for k, old := range base {
		if _, keep := next[k]; !keep {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(b.prefix+k), "=", old.mod))
			ops = append(ops, clientv3.OpDelete(b.prefix+k))
		}
	}
	if len(ops) == 0 {
		return expect, nil
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := b.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return expect, fmt.Errorf("etcdstate: saving cluster metadata: %w", err)
	}
	if !resp.Succeeded {
		return expect, fmt.Errorf("%w: %d keys changed by another broker", clusterstate.ErrConflict, len(cmps))
	}
	rev := resp.Header.Revision
	for k := range next {
		if old, had := base[k]; had && string(old.value) == string(next[k].value) {
			next[k] = old
		} else {
			next[k] = entry{value: next[k].value, mod: rev}
		}
	}
	b.remember(clusterstate.Revision(rev), next)
	return clusterstate.Revision(rev), nil
}

// Watch delivers the whole stored image after every change under the
// prefix made after from, until ctx ends. If etcd compacted past the
// revision the watch must resume from, the image is loaded afresh.
func (b *Backend) Watch(ctx context.Context, from clusterstate.Revision) <-chan clusterstate.Update {
	out := make(chan clusterstate.Update, 16)
	b.mu.Lock()
	cur := b.snaps[from]
	b.mu.Unlock()
	go func() {
		defer close(out)
		ks := keySet{}
		for k, v := range cur {
			ks[k] = v
		}
		rev := int64(from)
		for ctx.Err() == nil {
			wctx := clientv3.WithRequireLeader(ctx)
			wch := b.cli.Watch(wctx, b.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
			for wr := range wch {
				if wr.CompactRevision != 0 || wr.Err() != nil {
					b.log.Warn().Err(wr.Err()).Int64("compact_revision", wr.CompactRevision).Msg("etcd watch interrupted; reloading cluster metadata")
					break
				}
				if len(wr.Events) == 0 {
					continue
				}
				next := make(keySet, len(ks)+len(wr.Events))
				for k, v := range ks {
					next[k] = v
				}
				changed := false
				for _, ev := range wr.Events {
					k, ok := b.imageKey(ev.Kv.Key)
					if !ok {
						continue
					}
					changed = true
					if ev.Type == clientv3.EventTypeDelete {
						delete(next, k)
					} else {
						next[k] = entry{value: ev.Kv.Value, mod: ev.Kv.ModRevision}
					}
					rev = max(rev, ev.Kv.ModRevision)
				}
				if !changed {
					continue
				}
				ks = next
				if !b.deliver(ctx, out, ks, rev) {
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			// The watch ended (compaction, lost leader, closed client):
			// start again from a fresh load.
			img, r, err := b.Load(ctx)
			if err != nil {
				b.log.Warn().Err(err).Msg("reloading cluster metadata")
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			b.mu.Lock()
			ks = b.snaps[r]
			b.mu.Unlock()
			rev = int64(r)
			select {
			case out <- clusterstate.Update{Image: img, Revision: r}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// deliver sends the image of ks at rev, remembering ks for a later Save.
func (b *Backend) deliver(ctx context.Context, out chan<- clusterstate.Update, ks keySet, rev int64) bool {
	img, err := decode(ks)
	if err != nil {
		b.log.Error().Err(err).Msg("undecodable cluster metadata in etcd")
		return true
	}
	b.remember(clusterstate.Revision(rev), ks)
	select {
	case out <- clusterstate.Update{Image: img, Revision: clusterstate.Revision(rev)}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *Backend) remember(rev clusterstate.Revision, ks keySet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.snaps[rev]; !ok {
		b.order = append(b.order, rev)
	}
	b.snaps[rev] = ks
	for len(b.order) > maxSnaps {
		delete(b.snaps, b.order[0])
		b.order = b.order[1:]
	}
}

// imageKey returns a stored key without the prefix, if it is part of the
// image (not a broker registration or the controller election).
func (b *Backend) imageKey(key []byte) (string, bool) {
	k, ok := strings.CutPrefix(string(key), b.prefix)
	return k, ok && (k == metaKey || strings.HasPrefix(k, topicsPrefix))
}

// encode splits an image into its keys.
func encode(img clusterstate.Image) (keySet, error) {
	ks := keySet{}
	topics := img.Topics
	img.Topics = nil
	data, err := json.Marshal(img)
	if err != nil {
		return nil, fmt.Errorf("etcdstate: encoding cluster metadata: %w", err)
	}
	ks[metaKey] = entry{value: data}
	for _, t := range topics {
		data, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("etcdstate: encoding topic %s: %w", t.Name, err)
		}
		ks[topicsPrefix+t.Name] = entry{value: data}
	}
	return ks, nil
}

// decode joins stored keys into an image, topics sorted by name.
func decode(ks keySet) (clusterstate.Image, error) {
	var img clusterstate.Image
	if e, ok := ks[metaKey]; ok {
		if err := json.Unmarshal(e.value, &img); err != nil {
			return img, fmt.Errorf("etcdstate: cluster metadata is corrupt: %w", err)
		}
	}
	img.Topics = nil
	for k, e := range ks {
		if !strings.HasPrefix(k, topicsPrefix) {
			continue
		}
		var t clusterstate.ImageTopic
		if err := json.Unmarshal(e.value, &t); err != nil {
			return img, fmt.Errorf("etcdstate: topic %s is corrupt: %w", k, err)
		}
		img.Topics = append(img.Topics, t)
	}
	sort.Slice(img.Topics, func(i, j int) bool { return img.Topics[i].Name < img.Topics[j].Name })
	return img, nil
}
