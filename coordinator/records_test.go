package coordinator

import (
	"bytes"
	"testing"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestPartitionForMatchesJavaHashCode(t *testing.T) {
	for _, tc := range []struct {
		group string
		parts int
		want  int
	}{
		{"hello", 50, 99162322 % 50}, // "hello".hashCode() == 99162322
		{"", 50, 0},
		// "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka's abs maps it to 0.
		{"polygenelubricants", 50, 0},
		// "Aa" and "BB" collide in Java (2112).
		{"Aa", 7, 2112 % 7},
		{"BB", 7, 2112 % 7},
		{"ü", 10, 252 % 10},
		// A negative hash: -1911774318.
		{"group-0-consumers", 50, 1911774318 % 50},
		{"my-consumer-group", 50, 1513705513 % 50},
	} {
		if got := partitionFor(tc.group, tc.parts); got != tc.want {
			t.Errorf("partitionFor(%q, %d) = %d, want %d", tc.group, tc.parts, got, tc.want)
		}
	}
	// Java hashes UTF-16 units: a supplementary character is two of them.
	if got, want := partitionFor("😀", 1000), (0xD83D*31+0xDE00)%1000; got != want {
		t.Errorf("surrogate pair: %d want %d", got, want)
	}
}

// mustBatch encodes recs as the coordinator writes them.
func mustBatch(t testing.TB, ts int64, recs []kv) []byte {
	t.Helper()
	b, err := encodeBatch(ts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBatchRoundTrip(t *testing.T) {
	recs := []kv{
		{offsetCommitKey("g", "t", 1), offsetCommitValue(&offsetEntry{offset: 5, leaderEpoch: 2, metadata: "m", commitTime: 9, expireTime: -1})},
		{groupMetadataKey("g"), nil},
		{[]byte("k"), []byte{}},
	}
	b := mustBatch(t, 1234, recs)
	h, err := protocol.ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.NumRecords != 3 || h.BaseTimestamp != 1234 || h.ProducerID != -1 || h.Codec() != protocol.CodecNone {
		t.Fatalf("header %+v", h)
	}
	got, err := protocol.DecodeRecords(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if int(r.OffsetDelta) != i || !bytes.Equal(r.Key, recs[i].key) || !bytes.Equal(r.Value, recs[i].value) || (r.Value == nil) != (recs[i].value == nil) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	e, err := decodeOffsetCommitValue(got[0].Value)
	if err != nil || e.offset != 5 || e.leaderEpoch != 2 || e.metadata != "m" || e.commitTime != 9 || e.expireTime != -1 {
		t.Fatalf("value %+v %v", e, err)
	}
	// An explicit retention is written as value v1, as Kafka does.
	v1 := offsetCommitValue(&offsetEntry{offset: 1, leaderEpoch: -1, expireTime: 77})
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(v1); err != nil || v.Version != 1 || v.ExpireTimestamp != 77 {
		t.Fatalf("v1 value %+v %v", v, err)
	}
}
