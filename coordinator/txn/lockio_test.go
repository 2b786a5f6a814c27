package txn

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/storage"
)

// TestProducerIDBlockWriteHoldsNoCoordinatorLock: reserving a new block of
// producer ids wrote and fsynced producer-ids.json while holding mu, the
// lock every transactional produce takes to verify its producer, so each
// thousandth InitProducerId stalled them all behind two fsyncs. The write
// now happens with mu released; ids stay unique, also across a restart.
func TestProducerIDBlockWriteHoldsNoCoordinatorLock(t *testing.T) {
	idFile := filepath.Join(t.TempDir(), "producer-ids.json")
	c := newTestCoordinator(t, &memLog{}, idFile)
	var mu sync.Mutex
	var writes, heldDuringWrite int
	c.writeIDFile = func(path string, data []byte) error {
		if c.mu.TryLock() {
			c.mu.Unlock()
		} else {
			mu.Lock()
			heldDuringWrite++
			mu.Unlock()
		}
		mu.Lock()
		writes++
		mu.Unlock()
		return storage.WriteFileAtomic(path, data)
	}

	const workers, each = 4, 700 // enough ids for several blocks
	ids := make(chan int64, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				pid, code := c.AllocateProducerID()
				if code != 0 {
					t.Errorf("AllocateProducerID: error code %d", code)
					return
				}
				ids <- pid
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := make(map[int64]bool)
	var maxID int64 = -1
	for id := range ids {
		if seen[id] {
			t.Fatalf("producer id %d handed out twice", id)
		}
		seen[id] = true
		maxID = max(maxID, id)
	}
	if heldDuringWrite > 0 {
		t.Errorf("%d of %d producer id block writes ran holding the coordinator's mu", heldDuringWrite, writes)
	}
	if writes < workers*each/idBlockSize {
		t.Errorf("%d block writes for %d ids", writes, len(seen))
	}

	// A restart hands out ids past every id handed out before.
	c.Close()
	again := newTestCoordinator(t, &memLog{}, idFile)
	pid, code := again.AllocateProducerID()
	if code != 0 || pid <= maxID {
		t.Errorf("after a restart: id %d (code %d), want above %d", pid, code, maxID)
	}
}

// TestProducerIDBlockWriteFailureHandsOutNothing: when the block cannot be
// persisted, no id of it is used, and the next attempt retries the write.
func TestProducerIDBlockWriteFailureHandsOutNothing(t *testing.T) {
	c := newTestCoordinator(t, &memLog{}, filepath.Join(t.TempDir(), "producer-ids.json"))
	c.writeIDFile = func(string, []byte) error { return errors.New("disk full") }
	if pid, code := c.AllocateProducerID(); code == 0 {
		t.Fatalf("got producer id %d without a durable block", pid)
	}
	c.writeIDFile = storage.WriteFileAtomic
	if pid, code := c.AllocateProducerID(); code != 0 || pid != 0 {
		t.Errorf("after the disk recovered: id %d, code %d; want 0, 0", pid, code)
	}
}

// TestTxnStateTopicCreatedWithoutHoldingMu: the first transactional write
// created __transaction_state (log opens and a cluster metadata fsync)
// while holding mu, stalling produce verification and Describe/List. It is
// now created under opMu alone.
func TestTxnStateTopicCreatedWithoutHoldingMu(t *testing.T) {
	var c *Coordinator
	var created, heldDuringCreate int
	log := &memLog{}
	c, err := New(Config{MaxTimeout: time.Minute, IDExpiration: time.Hour, AbortInterval: time.Minute}, Deps{
		Logger: zerolog.Nop(),
		CreateLogs: func() ([]Log, error) {
			created++
			if c.mu.TryLock() {
				c.mu.Unlock()
			} else {
				heldDuringCreate++
			}
			return []Log{log}, nil
		},
		WriteMarkers:    func(int64, int16, bool, []TopicPartition) error { return nil },
		PartitionExists: func(string, int32) bool { return true },
		IDFile:          filepath.Join(t.TempDir(), "producer-ids.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, id := range []string{"a", "b"} {
		if _, _, code := c.InitProducerID(id, 60000, -1, -1); code != 0 {
			t.Fatalf("InitProducerID(%s): error %d", id, code)
		}
	}
	if created != 1 {
		t.Errorf("__transaction_state created %d times, want once", created)
	}
	if heldDuringCreate > 0 {
		t.Error("__transaction_state was created holding mu")
	}
	if _, ok := c.Describe("a"); !ok {
		t.Error("transactional id a not registered")
	}
}
