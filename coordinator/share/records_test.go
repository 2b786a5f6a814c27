package share

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

var topicA = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

func TestShareKeyEncoding(t *testing.T) {
	k := Key{Type: RecordUpdate, GroupID: "g", TopicID: topicA, Partition: 7}
	// int16 type, int16-length string, 16-byte uuid, int32 partition.
	want := append([]byte{0, 1, 0, 1, 'g'}, topicA[:]...)
	want = append(want, 0, 0, 0, 7)
	if got := k.AppendTo(nil); !bytes.Equal(got, want) {
		t.Fatalf("key % x, want % x", got, want)
	}
	back, err := DecodeKey(want)
	if err != nil || back != k {
		t.Fatalf("decode: %+v %v", back, err)
	}
	if _, err := DecodeKey([]byte{0, 2, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("type 2 key: %v, want ErrCorrupt", err)
	}
}

func TestShareValueEncoding(t *testing.T) {
	v := UpdateValue{SnapshotEpoch: 1, LeaderEpoch: 2, StartOffset: 3, DeliveryCompleteCount: -1,
		Batches: []StateBatch{{First: 3, Last: 4, State: StateArchived, DeliveryCount: 5}}}
	want := []byte{
		0, 0, // version
		0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3,
		2, // compact array of one
		0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 5, 0,
		0, // no tags: DeliveryCompleteCount -1 is the default
	}
	if got := v.AppendTo(nil); !bytes.Equal(got, want) {
		t.Fatalf("update value\n got % x\nwant % x", got, want)
	}
	v.DeliveryCompleteCount = 9
	got := v.AppendTo(nil)
	if tail := got[len(got)-7:]; !bytes.Equal(tail, []byte{1, 0, 4, 0, 0, 0, 9}) {
		t.Fatalf("tagged DeliveryCompleteCount % x", tail)
	}
}

func TestShareValueRoundTrip(t *testing.T) {
	batches := []StateBatch{{0, 9, StateAcknowledged, 1}, {10, 10, StateAvailable, 2}}
	snaps := []SnapshotValue{
		{},
		{SnapshotEpoch: 3, StateEpoch: 1, LeaderEpoch: -1, StartOffset: 42, DeliveryCompleteCount: -1, CreateTimestamp: 5, WriteTimestamp: 6, Batches: batches},
		{StartOffset: 1, DeliveryCompleteCount: 12, Batches: batches},
	}
	for _, s := range snaps {
		if s.Batches == nil {
			s.Batches = []StateBatch{}
		}
		got, err := DecodeSnapshotValue(s.AppendTo(nil))
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("snapshot %+v -> %+v %v", s, got, err)
		}
	}
	u := UpdateValue{SnapshotEpoch: 3, StartOffset: -1, DeliveryCompleteCount: 4, Batches: batches}
	got, err := DecodeUpdateValue(u.AppendTo(nil))
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Fatalf("update %+v -> %+v %v", u, got, err)
	}
	// An unknown tag from a newer Kafka is skipped.
	raw := UpdateValue{StartOffset: 1, DeliveryCompleteCount: -1, Batches: batches}.AppendTo(nil)
	raw = append(raw[:len(raw)-1], 1, 5, 2, 0xaa, 0xbb)
	if got, err := DecodeUpdateValue(raw); err != nil || got.StartOffset != 1 || got.DeliveryCompleteCount != -1 {
		t.Fatalf("unknown tag: %+v %v", got, err)
	}
	for i := range raw[:len(raw)-1] {
		if _, err := DecodeUpdateValue(raw[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v, want ErrCorrupt", i, err)
		}
	}
}

func TestShareReplaySnapshotThenUpdates(t *testing.T) {
	key := func(typ int16) []byte {
		return Key{Type: typ, GroupID: "g", TopicID: topicA, Partition: 0}.AppendTo(nil)
	}
	rp := NewReplay()
	steps := []struct{ k, v []byte }{
		{key(RecordSnapshot), SnapshotValue{StartOffset: 0, DeliveryCompleteCount: -1,
			Batches: []StateBatch{{0, 4, StateAvailable, 1}}}.AppendTo(nil)},
		// A partial update, as Kafka writes: only 2-3 changed.
		{key(RecordUpdate), UpdateValue{StartOffset: -1, DeliveryCompleteCount: 2,
			Batches: []StateBatch{{2, 3, StateAcknowledged, 1}}}.AppendTo(nil)},
		{key(RecordUpdate), UpdateValue{StartOffset: 1, DeliveryCompleteCount: 2,
			Batches: []StateBatch{{4, 4, StateAvailable, 2}}}.AppendTo(nil)},
	}
	for _, s := range steps {
		if err := rp.Apply(s.k, s.v); err != nil {
			t.Fatal(err)
		}
	}
	pk := PartitionKey{GroupID: "g", TopicID: topicA}
	want := Persisted{StartOffset: 1, DeliveryCompleteCount: 2, Batches: []StateBatch{
		{1, 1, StateAvailable, 1}, {2, 3, StateAcknowledged, 1}, {4, 4, StateAvailable, 2},
	}}
	if got := rp.State[pk]; !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed %+v, want %+v", got, want)
	}
	if err := rp.Apply(key(RecordSnapshot), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := rp.State[pk]; ok {
		t.Fatal("tombstone left the share-partition")
	}
}

func FuzzShareRecords(f *testing.F) {
	f.Add(Key{GroupID: "g", TopicID: topicA}.AppendTo(nil),
		SnapshotValue{StartOffset: 1, Batches: []StateBatch{{1, 2, StateAvailable, 1}}}.AppendTo(nil))
	f.Add(Key{Type: RecordUpdate, GroupID: "g"}.AppendTo(nil),
		UpdateValue{StartOffset: -1, DeliveryCompleteCount: 3}.AppendTo(nil))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		rp := NewReplay()
		_ = rp.Apply(k, v) // must not panic or allocate without bound
	})
}
