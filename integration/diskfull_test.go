package integration

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes on a temp dir and unmounts it when
// the test ends (after the broker, whose cleanup was registered later).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: mounts a tmpfs")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a tmpfs needs root (run the integration tests as root, as CI does)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs (no CAP_SYS_ADMIN in this container?): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFullOnTmpfs fills a real 8 MiB tmpfs under the broker: the
// producer gets KAFKA_STORAGE_ERROR, what was acknowledged stays readable,
// writes resume once space is freed (without a restart), and after a
// restart a consumer reads back exactly the acknowledged records at their
// offsets and nothing of the refused ones.
func TestDiskFullOnTmpfs(t *testing.T) {
	mnt := mountTmpfs(t, "8m")
	dataDir := filepath.Join(mnt, "data")
	filler := filepath.Join(mnt, "filler")
	// Leave about 1.5 MiB for the broker.
	if err := os.WriteFile(filler, make([]byte, 6<<20+512<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, nil, dataDir)
	createTopic(t, newAdmin(t, b.Addr()), "full", 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("full"), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0), kgo.ProducerLinger(0))

	acked := map[int64][]byte{} // offset -> value
	refused := map[string]bool{}
	value := func(i int) []byte {
		v := make([]byte, 64<<10) // incompressible, so the disk fills
		rng := rand.New(rand.NewPCG(uint64(i), 0))
		for k := range v {
			v[k] = byte(rng.Uint32())
		}
		copy(v, fmt.Sprintf("record-%05d", i))
		return v
	}
	produce := func(i int) error {
		r := &kgo.Record{Value: value(i)}
		err := cl.ProduceSync(testContext(t), r).FirstErr()
		if err == nil {
			acked[r.Offset] = r.Value
		} else {
			refused[string(r.Value[:12])] = true
		}
		return err
	}
	i := 0
	var full error
	for ; i < 200 && full == nil; i++ {
		full = produce(i)
	}
	if !errors.Is(full, kerr.KafkaStorageError) {
		t.Fatalf("after %d records of 64 KiB on a full disk: %v, want KAFKA_STORAGE_ERROR", i, full)
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the disk filled")
	}
	if err := produce(i); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("second produce on the full disk: %v", err)
	}
	i++
	checkAcked(t, b.Addr(), acked, refused) // reads keep working on the full disk

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := produce(i); err != nil {
			t.Fatalf("produce after space was freed: %v", err)
		}
		i++
	}
	checkAcked(t, b.Addr(), acked, refused)

	b.Close()
	b = startBroker(t, nil, dataDir)
	checkAcked(t, b.Addr(), acked, refused)
}

// checkAcked consumes the partition from offset 0 to its end and checks that
// every acknowledged record is there at its offset with its value, and that
// no refused record is.
func checkAcked(t *testing.T, addr string, acked map[int64][]byte, refused map[string]bool) {
	t.Helper()
	var end int64
	for off := range acked {
		end = max(end, off+1)
	}
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"full": {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	ctx := testContext(t)
	got := map[int64][]byte{}
	for next := int64(0); next < end; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Offset] = r.Value
			next = r.Offset + 1
		})
	}
	for off, v := range acked {
		if !bytes.Equal(got[off], v) {
			t.Fatalf("acknowledged record at offset %d: read %q..., want %q...", off, valueHead(got[off]), valueHead(v))
		}
	}
	for off, v := range got {
		if refused[string(valueHead(v))] {
			t.Fatalf("refused record %q is readable at offset %d", valueHead(v), off)
		}
	}
	t.Logf("%d acknowledged records read back, %d refused", len(acked), len(refused))
}

func valueHead(b []byte) []byte { return b[:min(len(b), 12)] }
