package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Zero-copy fetch (issue 13): record bytes go from the segment files to the
// socket with sendfile. These tests give the broker a tiny socket send
// buffer (socket.send.buffer.bytes) and the client a tiny receive buffer,
// so that a response of megabytes cannot fit in the kernel's buffers: every
// sendfile of it is partial or ends in EAGAIN and waits for the socket.

const zcSegmentBytes = 1 << 20 // Kafka's smallest segment.bytes

// loadRecords produces n records of varied sizes (1 to 20 KB) to
// partition 0 of topic and returns their values in order.
func loadRecords(t *testing.T, addr, topic string, n int) [][]byte {
	t.Helper()
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	values := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range values {
		values[i] = bytes.Repeat([]byte{byte('a' + i%26)}, 1<<10+(i*7919)%(19<<10))
		wg.Add(1)
		cl.Produce(testContext(t), &kgo.Record{Value: values[i]}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
	return values
}

// segmentFileBytes returns the bytes of a partition's segment files in
// offset order (the names are zero-padded base offsets) and their paths.
func segmentFileBytes(t *testing.T, dataDir, topic string, partition int) ([]byte, []string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, partition), "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var all []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all, paths
}

// zcConn is a raw connection whose receive buffer is as small as Linux
// allows, so the broker's writes to it stall.
func zcConn(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c := dialRaw(t, addr)
	if err := c.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFetchSendfileMatchesSegmentFiles checks that what a client receives
// through sendfile is byte for byte what the segment files hold, across
// several segments, at a non-flexible and a flexible fetch version, with
// partial sends and EAGAIN forced by small socket buffers; and that a
// consumer reads every record back.
func TestFetchSendfileMatchesSegmentFiles(t *testing.T) {
	b := startBroker(t, map[string]string{"socket.send.buffer.bytes": "4096"})
	const topic = "zerocopy"
	segBytes := fmt.Sprint(zcSegmentBytes)
	createTopic(t, newAdmin(t, b.Addr()), topic, 1, map[string]*string{"segment.bytes": &segBytes})
	values := loadRecords(t, b.Addr(), topic, 500)
	want, paths := segmentFileBytes(t, b.dir, topic, 0)
	if len(paths) < 3 {
		t.Fatalf("%d segments; the test needs reads across several", len(paths))
	}
	for _, v := range []int16{11, 16} {
		req := hugeFetch(topic, 0)
		req.Version = v
		if v >= 13 {
			req.Topics[0].TopicID = topicIDs(t, newAdmin(t, b.Addr()), topic)[topic]
		}
		resp := roundTrip(t, zcConn(t, b.Addr()), req, 1).(*kmsg.FetchResponse)
		rp := resp.Topics[0].Partitions[0]
		if rp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, rp.ErrorCode)
		}
		if !bytes.Equal(rp.RecordBatches, want) {
			t.Fatalf("v%d: received %d bytes of records that differ from the %d bytes of the %d segment files", v, len(rp.RecordBatches), len(want), len(paths))
		}
	}
	got := readPartitions(t, b.Addr(), topic, 1)[0]
	for i, r := range got {
		if !bytes.Equal(r.Value, values[i]) {
			t.Fatalf("record %d: %d bytes differ from the %d produced", i, len(r.Value), len(values[i]))
		}
	}
}

// TestSendfileSurvivesRetentionDeletingItsSegments: retention deletes the
// segments a fetch response is being sent from, while it is being sent
// (the client has read only its first bytes and the tiny buffers hold the
// rest back). The response still carries the bytes the files held, and once
// it is written the broker closes the deleted files.
func TestSendfileSurvivesRetentionDeletingItsSegments(t *testing.T) {
	b := startBroker(t, map[string]string{"socket.send.buffer.bytes": "4096", "log.retention.check.interval.ms": "20"})
	const topic = "zcretention"
	segBytes := fmt.Sprint(zcSegmentBytes)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, topic, 1, map[string]*string{"segment.bytes": &segBytes})
	loadRecords(t, b.Addr(), topic, 400)
	want, paths := segmentFileBytes(t, b.dir, topic, 0)

	c := zcConn(t, b.Addr())
	sendRaw(t, c, encodeRequest(hugeFetch(topic, 0), 1))
	// The size prefix arrives once the response is encoded and its
	// records are being sent from the files.
	var size [4]byte
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(size[:1]); err != nil {
		t.Fatalf("reading the start of the response: %v", err)
	}

	ms := "1"
	if rs, err := adm.AlterTopicConfigs(testContext(t), []kadm.AlterConfig{{Name: "retention.ms", Value: &ms}}, topic); err != nil || rs[0].Err != nil {
		t.Fatalf("alter retention.ms: %v %v", err, rs)
	}
	eventually(t, 30*time.Second, "retention to delete the old segments", func() bool {
		for _, p := range paths[:len(paths)-1] {
			if _, err := os.Stat(p); err == nil {
				return false
			}
		}
		return true
	})
	if openDeletedSegments(t, topic) == 0 {
		t.Fatal("no deleted segment of the topic is held open while its response is being sent")
	}

	rest, err := readFull(c, size[:1])
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	if body, err := skipTagSection(rest); err != nil {
		t.Fatal(err)
	} else if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decoding the response: %v", err)
	}
	if got := resp.Topics[0].Partitions[0].RecordBatches; !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes of records that differ from the %d the deleted segments held", len(got), len(want))
	}
	eventually(t, 10*time.Second, "the broker to close the deleted segments", func() bool {
		return openDeletedSegments(t, topic) == 0
	})
}

// readFull reads the rest of a response frame whose first bytes are
// first, and returns it after the correlation id.
func readFull(c net.Conn, first []byte) ([]byte, error) {
	head := make([]byte, 8)
	n := copy(head, first)
	if _, err := io.ReadFull(c, head[n:]); err != nil {
		return nil, err
	}
	frame := make([]byte, int(binary.BigEndian.Uint32(head))-4)
	if _, err := io.ReadFull(c, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// openDeletedSegments counts this process's descriptors of deleted segment
// files of topic (the embedded broker runs in the test process).
func openDeletedSegments(t *testing.T, topic string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("needs /proc/self/fd")
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.Contains(target, topic+"-0") && strings.HasSuffix(target, ".log (deleted)") {
			n++
		}
	}
	return n
}

// TestConsumeLargeTopicPeakRSS has consumers read a topic of 10 KB records
// from the start, against a real skiff process restarted after filling
// it, and bounds the process's peak RSS (VmHWM): with records sent from
// the segment files, fetches do not hold records in the broker's memory.
// The topic holds SKIFF_RSS_CONSUME_MB megabytes (default 256; issue 13
// measures 2048).
func TestConsumeLargeTopicPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the skiff binary")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the broker's peak RSS")
	}
	mb := 256
	if v := os.Getenv("SKIFF_RSS_CONSUME_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("SKIFF_RSS_CONSUME_MB=%q: want a positive number of megabytes", v)
		}
		mb = n
	}
	// rssConsumers read at once: a copying fetch path holds up to
	// fetch.max.bytes per consumer (6 MB here: 1 MB per partition).
	const rssConsumers = 8
	// About twice the 14 MB measured with zero-copy fetch; copying
	// fetches reached 102 MB.
	const limit = 32 << 20
	bin, dir := buildSkiff(t), t.TempDir()
	p := startSkiff(t, bin, dir)
	createTopic(t, newAdmin(t, p.addr), benchTopic, benchPartitions, nil)
	records := mb << 20 / consumeRecordSize
	started := time.Now()
	fillBenchTopic(t, p.addr, records)
	t.Logf("produced %d MB in %v; VmHWM %d MB", mb, time.Since(started).Round(time.Millisecond), vmHWM(t, p)>>20)
	// A fresh process, so that its peak is the consumer's alone.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	p = startSkiff(t, bin, dir)
	t.Logf("restarted: VmHWM %d MB", vmHWM(t, p)>>20)
	started = time.Now()
	var wg sync.WaitGroup
	for range rssConsumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			consumeAll(t, p.addr, benchTopic, records)
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	hwm := vmHWM(t, p)
	t.Logf("%d consumers each read %d MB in %v (%.0f MB/s in all); VmHWM %d MB", rssConsumers, mb, elapsed.Round(time.Millisecond), float64(rssConsumers*mb)/elapsed.Seconds(), hwm>>20)
	if hwm > limit {
		t.Fatalf("broker peak RSS %d MB after %d consumers read %d MB, want at most %d MB", hwm>>20, rssConsumers, mb, limit>>20)
	}
}

// TestFetchReleasesSegmentsOnEveryPath: every way a fetch can end gives
// its segment references back (a long poll that read and then waited, a
// response never read because the connection closed, consumers with fetch
// sessions), and once the topic is deleted no descriptor of its files
// stays open.
func TestFetchReleasesSegmentsOnEveryPath(t *testing.T) {
	b := startBroker(t, nil)
	const topic = "zcrelease"
	segBytes := fmt.Sprint(zcSegmentBytes)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, topic, 1, map[string]*string{"segment.bytes": &segBytes})
	loadRecords(t, b.Addr(), topic, 300)

	// A long poll whose min_bytes is never reached: it reads, drops the
	// read, waits and reads again.
	poll := hugeFetch(topic, 0)
	poll.MinBytes = 1 << 30
	poll.MaxWaitMillis = 50
	if resp := roundTrip(t, dialRaw(t, b.Addr()), poll, 1).(*kmsg.FetchResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("long poll: error %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	// A response its client never reads: the connection closes while the
	// broker is sending it.
	c := zcConn(t, b.Addr())
	sendRaw(t, c, encodeRequest(hugeFetch(topic, 0), 1))
	var one [1]byte
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(one[:]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// A consumer (fetch sessions, incremental fetches, long polls at the end).
	readPartitions(t, b.Addr(), topic, 1)
	eventually(t, 10*time.Second, "every fetch to give its segments back", func() bool {
		return b.Stats().FetchReadsHeld == 0
	})

	if rs, err := adm.DeleteTopics(testContext(t), topic); err != nil || rs[topic].Err != nil {
		t.Fatalf("delete topic: %v %v", err, rs)
	}
	eventually(t, 10*time.Second, "every segment of the deleted topic to be closed", func() bool {
		return openDeletedSegments(t, topic) == 0
	})
}
