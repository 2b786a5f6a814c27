package clusterstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/protocol"
	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// testDefaults are the broker defaults of the topic configs the tests
// read (Kafka's values).
var testDefaults = ConfigDefaults{Values: map[string]string{
	"cleanup.policy":                  "delete",
	"segment.bytes":                   "1073741824",
	"segment.ms":                      "604800000",
	"index.interval.bytes":            "4096",
	"retention.ms":                    "604800000",
	"retention.bytes":                 "-1",
	"flush.messages":                  "9223372036854775807",
	"flush.ms":                        "9223372036854775807",
	"max.message.bytes":               "1048588",
	"message.timestamp.type":          "CreateTime",
	"message.timestamp.after.max.ms":  "3600000",
	"message.timestamp.before.max.ms": "9223372036854775807",
	"min.insync.replicas":             "1",
	"unclean.leader.election.enable":  "false",
}}

// flakyBackend wraps a FileBackend: it fails saves while fail is set and,
// when hold is set, parks every save until released, so that tests can
// look at the state while a save is under way.
type flakyBackend struct {
	*FileBackend
	mu      sync.Mutex
	fail    bool
	hold    bool
	inSave  chan struct{} // receives when a held save starts
	release chan struct{} // a held save continues when this is closed or sent to
}

func (b *flakyBackend) Save(ctx context.Context, img Image, expect Revision) (Revision, error) {
	b.mu.Lock()
	fail, hold := b.fail, b.hold
	b.mu.Unlock()
	if hold {
		b.inSave <- struct{}{}
		<-b.release
	}
	if fail {
		return expect, errors.New("injected save failure")
	}
	return b.FileBackend.Save(ctx, img, expect)
}

type fixture struct {
	dir     string
	store   *storage.Store
	backend *flakyBackend
	state   *State
}

// open opens a store and a State on dir; both are closed at cleanup.
func open(t testing.TB, dir string) *fixture {
	t.Helper()
	store, err := storage.OpenStore(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	b := &flakyBackend{FileBackend: NewFileBackend(nil, filepath.Join(dir, FileName)), inSave: make(chan struct{}), release: make(chan struct{})}
	st, err := Open(Options{Backend: b, Logs: store, Defaults: testDefaults, NodeID: 7, Logger: zerolog.Nop()})
	if err != nil {
		_ = store.Close()
		t.Fatal(err)
	}
	f := &fixture{dir: dir, store: store, backend: b, state: st}
	t.Cleanup(func() { f.close(t) })
	return f
}

func (f *fixture) close(t testing.TB) {
	if f.store == nil {
		return
	}
	if err := f.store.Close(); err != nil {
		t.Error(err)
	}
	f.store = nil
}

// reopen closes the fixture's store and opens the same directory again,
// as a restart does.
func (f *fixture) reopen(t *testing.T) *fixture {
	f.close(t)
	return open(t, f.dir)
}

func mustCreate(t *testing.T, s *State, name string, partitions int32, configs map[string]string) *Topic {
	t.Helper()
	r := s.CreateTopics([]NewTopic{{Name: name, Partitions: partitions, Configs: configs}})
	if r[0].Err != nil {
		t.Fatalf("creating %s: %v", name, r[0].Err)
	}
	return r[0].Topic
}

func readImage(t *testing.T, dir string) Image {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var img Image
	if err := json.Unmarshal(data, &img); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCreateTopicsReservesNamesAndPublishesTogether(t *testing.T) {
	f := open(t, t.TempDir())
	s := f.state
	writes := f.backend.Writes()
	res := s.CreateTopics([]NewTopic{
		{Name: "a.b", Partitions: 3},
		{Name: "a_b", Partitions: 1}, // collides with a.b in the same request
		{Name: "a.b", Partitions: 1}, // twice in the same request
		{Name: "c", Partitions: 2, Configs: map[string]string{"cleanup.policy": "compact"}},
	})
	if res[0].Err != nil || res[3].Err != nil {
		t.Fatalf("creates failed: %v, %v", res[0].Err, res[3].Err)
	}
	if !errors.Is(res[1].Err, ErrTopicCollision) {
		t.Errorf("a_b: got %v, want a collision", res[1].Err)
	}
	if !errors.Is(res[2].Err, ErrTopicExists) {
		t.Errorf("second a.b: got %v, want exists", res[2].Err)
	}
	if got := f.backend.Writes() - writes; got != 1 {
		t.Errorf("one request saved %d times, want once", got)
	}
	if r := s.CreateTopics([]NewTopic{{Name: "a_b", Partitions: 1}}); !errors.Is(r[0].Err, ErrTopicCollision) {
		t.Errorf("a_b after a.b exists: got %v, want a collision", r[0].Err)
	}
	if other := s.CollidingTopic("a_b"); other != "a.b" {
		t.Errorf("CollidingTopic(a_b) = %q", other)
	}
	if got := strings.Join(s.TopicNames(), ","); got != "a.b,c" {
		t.Errorf("TopicNames = %s", got)
	}
	ab, _ := s.Topic("a.b")
	if byID, ok := s.TopicByID(ab.ID); !ok || byID != ab {
		t.Errorf("TopicByID does not find a.b")
	}
	if ab.ID == (TopicID{}) || ab.ID == res[3].Topic.ID {
		t.Errorf("topic ids not unique and non-zero: %v %v", ab.ID, res[3].Topic.ID)
	}
	p := s.Partition("a.b", 2)
	if p == nil || p.Log == nil || p.Index != 2 || p.Leader != 7 || len(p.Replicas) != 1 || p.Replicas[0] != 7 {
		t.Fatalf("partition a.b-2 = %+v", p)
	}
	if s.Partition("a.b", 3) != nil || s.Partition("a.b", -1) != nil || s.Partition("nope", 0) != nil {
		t.Errorf("Partition finds partitions that do not exist")
	}
	if c, _ := s.Topic("c"); !c.Config.CleanupCompact || c.Config.CleanupDelete {
		t.Errorf("c's typed config = %+v, want compact only", c.Config)
	}
}

func TestDeleteTopicRemovesItsLogs(t *testing.T) {
	f := open(t, t.TempDir())
	mustCreate(t, f.state, "gone", 2, nil)
	if err := f.state.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	if err := f.state.DeleteTopic("gone"); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("second delete: %v", err)
	}
	if _, ok := f.state.Topic("gone"); ok {
		t.Error("deleted topic still published")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "gone-0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gone-0 still on disk: %v", err)
	}
	if img := readImage(t, f.dir); len(img.Topics) != 0 {
		t.Errorf("meta.json still lists %v", img.Topics)
	}
}

func TestDeleteTopicsSavesOnce(t *testing.T) {
	f := open(t, t.TempDir())
	for _, name := range []string{"a", "b", "c"} {
		mustCreate(t, f.state, name, 1, nil)
	}
	writes := f.backend.Writes()
	errs := f.state.DeleteTopics([]string{"a", "missing", "c", "a"})
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrUnknownTopic) || !errors.Is(errs[3], ErrUnknownTopic) {
		t.Fatalf("errors = %v", errs)
	}
	if got := f.backend.Writes() - writes; got != 1 {
		t.Errorf("deleting two topics saved %d times, want once", got)
	}
	if got := strings.Join(f.state.TopicNames(), ","); got != "b" {
		t.Errorf("left: %s", got)
	}
	if img := readImage(t, f.dir); len(img.Topics) != 1 || img.Topics[0].Name != "b" {
		t.Errorf("meta.json lists %+v", img.Topics)
	}
}

func TestSetTopicConfigsParsesOncePublishesNewTopic(t *testing.T) {
	f := open(t, t.TempDir())
	before := mustCreate(t, f.state, "t", 1, nil)
	if before.Config.MaxMessageBytes != 1048588 || before.Config.LogAppendTime {
		t.Fatalf("default config = %+v", before.Config)
	}
	err := f.state.SetTopicConfigs("t", map[string]string{"max.message.bytes": "100", "message.timestamp.type": "LogAppendTime", "retention.ms": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := f.state.Topic("t")
	if after.Config.MaxMessageBytes != 100 || !after.Config.LogAppendTime || after.Config.Storage.RetentionMs != 1000 {
		t.Errorf("altered config = %+v", after.Config)
	}
	if before.Config.MaxMessageBytes != 1048588 || len(before.Overrides) != 0 {
		t.Error("the topic a reader held changed under it")
	}
	if after.Partitions[0] != before.Partitions[0] {
		t.Error("a config change replaced the partitions")
	}
	if err := f.state.SetTopicConfigs("nope", nil); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("unknown topic: %v", err)
	}
}

func TestAddPartitions(t *testing.T) {
	f := open(t, t.TempDir())
	before := mustCreate(t, f.state, "t", 1, nil)
	if err := f.state.AddPartitions("t", 3); err != nil {
		t.Fatal(err)
	}
	if err := f.state.AddPartitions("t", 3); err == nil {
		t.Error("shrinking or keeping the count succeeded")
	}
	after, _ := f.state.Topic("t")
	if len(after.Partitions) != 3 || len(before.Partitions) != 1 || after.Partitions[0] != before.Partitions[0] || after.ID != before.ID {
		t.Errorf("before %d partitions, after %d", len(before.Partitions), len(after.Partitions))
	}
}

func TestQuotas(t *testing.T) {
	f := open(t, t.TempDir())
	alice := "alice"
	user := []QuotaEntityPart{{Type: "user", Name: &alice}}
	def := []QuotaEntityPart{{Type: "client-id"}}
	if err := f.state.AlterQuota(user, []QuotaOp{{Key: "producer_byte_rate", Value: 1024}, {Key: "consumer_byte_rate", Value: 2048}}); err != nil {
		t.Fatal(err)
	}
	if err := f.state.AlterQuota(def, []QuotaOp{{Key: "request_percentage", Value: 50}}); err != nil {
		t.Fatal(err)
	}
	if err := f.state.AlterQuota(user, []QuotaOp{{Key: "consumer_byte_rate", Remove: true}}); err != nil {
		t.Fatal(err)
	}
	q := f.state.Quotas()
	if len(q) != 2 || q[0].Entity[0].Type != "client-id" || q[1].Values["producer_byte_rate"] != 1024 || len(q[1].Values) != 1 {
		t.Fatalf("quotas = %+v", q)
	}
	// Removing the last value removes the entity.
	if err := f.state.AlterQuota(def, []QuotaOp{{Key: "request_percentage", Remove: true}}); err != nil {
		t.Fatal(err)
	}
	if q := f.state.Quotas(); len(q) != 1 {
		t.Fatalf("quotas after removing the default = %+v", q)
	}
}

func TestReloadKeepsEverything(t *testing.T) {
	f := open(t, t.TempDir())
	id := f.state.ClusterID()
	tp := mustCreate(t, f.state, "kept", 2, map[string]string{"retention.ms": "5000"})
	mustCreate(t, f.state, "deleted", 1, nil)
	if err := f.state.DeleteTopic("deleted"); err != nil {
		t.Fatal(err)
	}
	if err := f.state.AddPartitions("kept", 4); err != nil {
		t.Fatal(err)
	}
	bob := "bob"
	if err := f.state.AlterQuota([]QuotaEntityPart{{Type: "user", Name: &bob}}, []QuotaOp{{Key: "producer_byte_rate", Value: 1}}); err != nil {
		t.Fatal(err)
	}

	g := f.reopen(t)
	if g.state.ClusterID() != id {
		t.Errorf("cluster id %s became %s", id, g.state.ClusterID())
	}
	kept, ok := g.state.Topic("kept")
	if !ok || kept.ID != tp.ID || len(kept.Partitions) != 4 || kept.Overrides["retention.ms"] != "5000" || kept.Config.Storage.RetentionMs != 5000 {
		t.Fatalf("reloaded topic = %+v", kept)
	}
	if _, ok := g.state.Topic("deleted"); ok {
		t.Error("deleted topic came back")
	}
	if q := g.state.Quotas(); len(q) != 1 || *q[0].Entity[0].Name != "bob" {
		t.Errorf("reloaded quotas = %+v", q)
	}
}

func TestOpenRemovesLogsOfTopicsDeletedBeforeACrash(t *testing.T) {
	// A crash after meta.json dropped the topic but before its logs
	// were deleted leaves their directories behind.
	f := open(t, t.TempDir())
	mustCreate(t, f.state, "kept", 1, nil)
	f.close(t)
	for _, stray := range []string{"gone-0", "kept-1"} {
		if err := os.MkdirAll(filepath.Join(f.dir, stray), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g := open(t, f.dir)
	for _, stray := range []string{"gone-0", "kept-1"} {
		if _, err := os.Stat(filepath.Join(g.dir, stray)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived the restart: %v", stray, err)
		}
	}
	if g.state.Partition("kept", 0) == nil {
		t.Error("kept-0 is gone")
	}
}

func TestFailedSaveChangesNothing(t *testing.T) {
	f := open(t, t.TempDir())
	mustCreate(t, f.state, "t", 1, map[string]string{"retention.ms": "5000"})
	f.backend.fail = true

	if r := f.state.CreateTopics([]NewTopic{{Name: "new", Partitions: 2}}); r[0].Err == nil {
		t.Error("create succeeded without a save")
	}
	if _, ok := f.state.Topic("new"); ok {
		t.Error("a topic whose save failed was published")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "new-0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the logs of a failed create were left behind: %v", err)
	}
	if err := f.state.DeleteTopic("t"); err == nil {
		t.Error("delete succeeded without a save")
	}
	if err := f.state.SetTopicConfigs("t", map[string]string{"retention.ms": "1"}); err == nil {
		t.Error("config change succeeded without a save")
	}
	if err := f.state.AddPartitions("t", 2); err == nil {
		t.Error("adding partitions succeeded without a save")
	}
	if err := f.state.AlterQuota([]QuotaEntityPart{{Type: "user"}}, []QuotaOp{{Key: "producer_byte_rate", Value: 1}}); err == nil {
		t.Error("quota change succeeded without a save")
	}
	tp, ok := f.state.Topic("t")
	if !ok || tp.Overrides["retention.ms"] != "5000" || len(tp.Partitions) != 1 || len(f.state.Quotas()) != 0 {
		t.Errorf("state changed by failed saves: %+v, quotas %+v", tp, f.state.Quotas())
	}
	if _, err := os.Stat(filepath.Join(f.dir, "t-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log of a failed partition addition was left behind: %v", err)
	}

	// The backend's revision did not move, so the next save goes through.
	f.backend.fail = false
	mustCreate(t, f.state, "later", 1, nil)
}

// TestChangesDoNotBlockReadersDuringSave holds a save half-way and checks
// that every lookup still answers, and that the change is invisible until
// its save is done: the I/O of a change happens outside any lock the
// request paths take.
func TestChangesDoNotBlockReadersDuringSave(t *testing.T) {
	f := open(t, t.TempDir())
	mustCreate(t, f.state, "old", 1, nil)
	f.backend.mu.Lock()
	f.backend.hold = true
	f.backend.mu.Unlock()

	done := make(chan []CreateResult)
	go func() { done <- f.state.CreateTopics([]NewTopic{{Name: "new", Partitions: 1}}) }()
	<-f.backend.inSave // the save is under way and parked

	if f.state.Partition("old", 0) == nil {
		t.Error("old-0 not found during a save")
	}
	if _, ok := f.state.Topic("new"); ok {
		t.Error("new is visible before its save finished")
	}
	_ = f.state.TopicNames()
	_ = f.state.Quotas()
	_ = f.state.ClusterID()
	_ = f.state.CollidingTopic("x")

	f.backend.mu.Lock()
	f.backend.hold = false
	f.backend.mu.Unlock()
	close(f.backend.release)
	if r := <-done; r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if f.state.Partition("new", 0) == nil {
		t.Error("new-0 not published after its save")
	}
}

// TestConcurrentReadersSeeWholeTopics runs lookups against a stream of
// changes under -race: a reader sees a topic either before or after a
// change, never half of one.
func TestConcurrentReadersSeeWholeTopics(t *testing.T) {
	f := open(t, t.TempDir())
	s := f.state
	mustCreate(t, s, "grow", 1, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, name := range s.TopicNames() {
					tp, ok := s.Topic(name)
					if !ok {
						continue // deleted since TopicNames
					}
					for i, p := range tp.Partitions {
						if p == nil || p.Log == nil || p.Index != int32(i) || p.Topic != name {
							errs <- fmt.Errorf("topic %s partition %d is %+v", name, i, p)
							return
						}
					}
					if byID, ok := s.TopicByID(tp.ID); ok && byID.Name != name {
						errs <- fmt.Errorf("id of %s resolves to %s", name, byID.Name)
						return
					}
				}
			}
		}()
	}
	for i := range 20 {
		name := fmt.Sprintf("t%d", i)
		mustCreate(t, s, name, 2, nil)
		if err := s.SetTopicConfigs(name, map[string]string{"retention.ms": "1000"}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddPartitions("grow", int32(i+2)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.DeleteTopic(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if tp, _ := s.Topic("grow"); len(tp.Partitions) != 21 {
		t.Errorf("grow has %d partitions, want 21", len(tp.Partitions))
	}
}

func TestFileBackendSaveIsAtomicAndRevisionGuarded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	b := NewFileBackend(nil, path)
	img, rev, err := b.Load(context.Background())
	if err != nil || rev != 0 || img.ClusterID != "" {
		t.Fatalf("empty load: %+v %d %v", img, rev, err)
	}
	rev, err = b.Save(context.Background(), Image{ClusterID: "one"}, rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(context.Background(), Image{ClusterID: "stale"}, rev-1); !errors.Is(err, ErrConflict) {
		t.Errorf("save at a stale revision: %v, want ErrConflict", err)
	}
	// A crash during a save leaves at most a temp file beside the old
	// content, which a reload ignores.
	if err := os.WriteFile(path+".123.tmp", []byte("{half"), 0o644); err != nil {
		t.Fatal(err)
	}
	img, _, err = NewFileBackend(nil, path).Load(context.Background())
	if err != nil || img.ClusterID != "one" {
		t.Errorf("reload: %+v %v", img, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != FileName && e.Name() != FileName+".123.tmp" {
			t.Errorf("save left %s behind", e.Name())
		}
	}
	if err := os.WriteFile(path, []byte("{corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewFileBackend(nil, path).Load(context.Background()); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt file loaded: %v", err)
	}
}

func TestInternalTopics(t *testing.T) {
	f := open(t, t.TempDir())
	s := f.state
	if logs := s.InternalLogs(OffsetsTopic); logs != nil {
		t.Fatalf("logs before creation: %v", logs)
	}
	if _, err := s.EnsureInternalTopic("user-topic", 1, 0); err == nil {
		t.Error("EnsureInternalTopic created a user topic")
	}
	logs, err := s.EnsureInternalTopic(OffsetsTopic, 3, 0)
	if err != nil || len(logs) != 3 {
		t.Fatalf("EnsureInternalTopic: %d logs, %v", len(logs), err)
	}
	tp, _ := s.Topic(OffsetsTopic)
	if !tp.Internal || !tp.Config.CleanupCompact || tp.Config.CleanupDelete || tp.Config.Storage.SegmentBytes != 104857600 {
		t.Errorf("offsets topic = %+v", tp)
	}
	// A second call (say FindCoordinator racing the first group write)
	// neither fails nor recreates.
	again, err := s.EnsureInternalTopic(OffsetsTopic, 5, 0)
	if err != nil || len(again) != 3 {
		t.Errorf("second EnsureInternalTopic: %d logs, %v", len(again), err)
	}

	if ClientWriteError(OffsetsTopic) != kerr.InvalidTopicException || ClientWriteError(TxnStateTopic) != kerr.InvalidTopicException {
		t.Error("client writes to internal topics are not refused with INVALID_TOPIC_EXCEPTION")
	}
	if ClientWriteError("orders") != nil {
		t.Error("client writes to a user topic are refused")
	}

	// The adapter appends and replays.
	batch, err := protocol.BuildBatch(nil, protocol.BatchHeader{PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		protocol.CodecNone, []protocol.Record{{Key: []byte("k"), Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	base, err := logs[1].AppendRecords(batch, true)
	if err != nil || base != 0 {
		t.Fatalf("append: base %d, %v", base, err)
	}
	recs, hw, err := logs[1].ReadRecords(0, 1<<20)
	if err != nil || hw != 1 || len(recs) != len(batch) {
		t.Errorf("read back %d bytes, hw %d, %v", len(recs), hw, err)
	}
}
