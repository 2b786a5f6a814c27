package share

import (
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Record types of __share_group_state: the int16 that starts every key
// (Kafka's coordinator record type, which doubles as the key version).
const (
	RecordSnapshot int16 = 0 // ShareSnapshotKey / ShareSnapshotValue
	RecordUpdate   int16 = 1 // ShareUpdateKey / ShareUpdateValue
)

// valueVersion is the only version of both values (flexible from v0).
const valueVersion int16 = 0

// tagDeliveryCompleteCount is the tag of the KIP-1226 field that Kafka 4.2
// added to both values; -1 (its default) is not written.
const tagDeliveryCompleteCount = 0

// ErrCorrupt marks a __share_group_state record that does not decode.
var ErrCorrupt = errors.New("share: corrupt __share_group_state record")

// Key names one share-partition: ShareSnapshotKey and ShareUpdateKey.
type Key struct {
	Type      int16 // RecordSnapshot or RecordUpdate
	GroupID   string
	TopicID   [16]byte
	Partition int32
}

// AppendTo encodes the key (non-flexible, as Kafka's spec says).
func (k Key) AppendTo(dst []byte) []byte {
	dst = kbin.AppendInt16(dst, k.Type)
	dst = kbin.AppendString(dst, k.GroupID)
	dst = kbin.AppendUuid(dst, k.TopicID)
	return kbin.AppendInt32(dst, k.Partition)
}

// DecodeKey reads a key written by AppendTo or by Kafka.
func DecodeKey(src []byte) (Key, error) {
	r := kbin.Reader{Src: src}
	k := Key{Type: r.Int16()}
	if k.Type != RecordSnapshot && k.Type != RecordUpdate {
		return Key{}, fmt.Errorf("%w: key type %d", ErrCorrupt, k.Type)
	}
	k.GroupID = r.String()
	k.TopicID = r.Uuid()
	k.Partition = r.Int32()
	if err := r.Complete(); err != nil {
		return Key{}, fmt.Errorf("%w: key: %v", ErrCorrupt, err)
	}
	return k, nil
}

// SnapshotValue is ShareSnapshotValue: the whole state of a
// share-partition.
type SnapshotValue struct {
	SnapshotEpoch         int32
	StateEpoch            int32
	LeaderEpoch           int32
	StartOffset           int64
	DeliveryCompleteCount int32 // tagged; -1 when unknown
	CreateTimestamp       int64
	WriteTimestamp        int64
	Batches               []StateBatch
}

// UpdateValue is ShareUpdateValue: batches that changed since the
// snapshot, applied on top of it. StartOffset is -1 when unchanged.
type UpdateValue struct {
	SnapshotEpoch         int32
	LeaderEpoch           int32
	StartOffset           int64
	DeliveryCompleteCount int32 // tagged; -1 when unknown
	Batches               []StateBatch
}

// AppendTo encodes the value with its version prefix.
func (v SnapshotValue) AppendTo(dst []byte) []byte {
	dst = kbin.AppendInt16(dst, valueVersion)
	dst = kbin.AppendInt32(dst, v.SnapshotEpoch)
	dst = kbin.AppendInt32(dst, v.StateEpoch)
	dst = kbin.AppendInt32(dst, v.LeaderEpoch)
	dst = kbin.AppendInt64(dst, v.StartOffset)
	dst = kbin.AppendInt64(dst, v.CreateTimestamp)
	dst = kbin.AppendInt64(dst, v.WriteTimestamp)
	dst = appendBatches(dst, v.Batches)
	return appendTags(dst, v.DeliveryCompleteCount)
}

// AppendTo encodes the value with its version prefix.
func (v UpdateValue) AppendTo(dst []byte) []byte {
	dst = kbin.AppendInt16(dst, valueVersion)
	dst = kbin.AppendInt32(dst, v.SnapshotEpoch)
	dst = kbin.AppendInt32(dst, v.LeaderEpoch)
	dst = kbin.AppendInt64(dst, v.StartOffset)
	dst = appendBatches(dst, v.Batches)
	return appendTags(dst, v.DeliveryCompleteCount)
}

func appendBatches(dst []byte, bs []StateBatch) []byte {
	dst = kbin.AppendCompactArrayLen(dst, len(bs))
	for _, b := range bs {
		dst = kbin.AppendInt64(dst, b.First)
		dst = kbin.AppendInt64(dst, b.Last)
		dst = kbin.AppendInt8(dst, int8(b.State))
		dst = kbin.AppendInt16(dst, b.DeliveryCount)
		dst = kbin.AppendUvarint(dst, 0) // no tagged fields in a batch
	}
	return dst
}

func appendTags(dst []byte, deliveryComplete int32) []byte {
	if deliveryComplete == -1 {
		return kbin.AppendUvarint(dst, 0)
	}
	dst = kbin.AppendUvarint(dst, 1)
	dst = kbin.AppendUvarint(dst, tagDeliveryCompleteCount)
	dst = kbin.AppendUvarint(dst, 4)
	return kbin.AppendInt32(dst, deliveryComplete)
}

// DecodeSnapshotValue reads a ShareSnapshotValue.
func DecodeSnapshotValue(src []byte) (SnapshotValue, error) {
	r := kbin.Reader{Src: src}
	if ver := r.Int16(); ver != valueVersion {
		return SnapshotValue{}, fmt.Errorf("%w: snapshot value version %d", ErrCorrupt, ver)
	}
	v := SnapshotValue{
		SnapshotEpoch: r.Int32(), StateEpoch: r.Int32(), LeaderEpoch: r.Int32(),
		StartOffset: r.Int64(), CreateTimestamp: r.Int64(), WriteTimestamp: r.Int64(),
	}
	var err error
	if v.Batches, err = readBatches(&r); err != nil {
		return SnapshotValue{}, err
	}
	if v.DeliveryCompleteCount, err = readTags(&r); err != nil {
		return SnapshotValue{}, err
	}
	return v, nil
}

// DecodeUpdateValue reads a ShareUpdateValue.
func DecodeUpdateValue(src []byte) (UpdateValue, error) {
	r := kbin.Reader{Src: src}
	if ver := r.Int16(); ver != valueVersion {
		return UpdateValue{}, fmt.Errorf("%w: update value version %d", ErrCorrupt, ver)
	}
	v := UpdateValue{SnapshotEpoch: r.Int32(), LeaderEpoch: r.Int32(), StartOffset: r.Int64()}
	var err error
	if v.Batches, err = readBatches(&r); err != nil {
		return UpdateValue{}, err
	}
	if v.DeliveryCompleteCount, err = readTags(&r); err != nil {
		return UpdateValue{}, err
	}
	return v, nil
}

func readBatches(r *kbin.Reader) ([]StateBatch, error) {
	n := r.CompactArrayLen()
	// Each batch takes at least 20 bytes: refuse a length the input cannot hold.
	if n < 0 || int(n) > len(r.Src)/20 {
		return nil, fmt.Errorf("%w: %d state batches", ErrCorrupt, n)
	}
	bs := make([]StateBatch, 0, n)
	for i := int32(0); i < n; i++ {
		b := StateBatch{First: r.Int64(), Last: r.Int64(), State: State(r.Int8()), DeliveryCount: r.Int16()}
		if err := skipTags(r); err != nil {
			return nil, err
		}
		bs = append(bs, b)
	}
	if !r.Ok() {
		return nil, fmt.Errorf("%w: truncated state batches", ErrCorrupt)
	}
	return bs, nil
}

// readTags reads the top-level tagged fields, returning
// DeliveryCompleteCount (-1 when absent) and skipping unknown tags.
func readTags(r *kbin.Reader) (int32, error) {
	dcc := int32(-1)
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		tag, size := r.Uvarint(), r.Uvarint()
		body := r.Span(int(size))
		if tag == tagDeliveryCompleteCount {
			tr := kbin.Reader{Src: body}
			dcc = tr.Int32()
			if err := tr.Complete(); err != nil {
				return 0, fmt.Errorf("%w: DeliveryCompleteCount: %v", ErrCorrupt, err)
			}
		}
	}
	if err := r.Complete(); err != nil {
		return 0, fmt.Errorf("%w: value: %v", ErrCorrupt, err)
	}
	return dcc, nil
}

func skipTags(r *kbin.Reader) error {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		r.Uvarint()
		r.Span(int(r.Uvarint()))
	}
	if !r.Ok() {
		return fmt.Errorf("%w: truncated tagged fields", ErrCorrupt)
	}
	return nil
}

// PartitionKey names a share-partition in replayed state.
type PartitionKey struct {
	GroupID   string
	TopicID   [16]byte
	Partition int32
}

// Replay folds __share_group_state records, in log order, into the durable
// state of every share-partition. A snapshot replaces what came before it;
// an update overwrites the offsets it names and, unless -1, the start
// offset; a tombstone (nil value) forgets the share-partition.
type Replay struct {
	State map[PartitionKey]Persisted
}

// NewReplay starts an empty replay.
func NewReplay() *Replay { return &Replay{State: make(map[PartitionKey]Persisted)} }

// Apply folds one record.
func (rp *Replay) Apply(key, value []byte) error {
	k, err := DecodeKey(key)
	if err != nil {
		return err
	}
	pk := PartitionKey{GroupID: k.GroupID, TopicID: k.TopicID, Partition: k.Partition}
	if value == nil {
		delete(rp.State, pk)
		return nil
	}
	if k.Type == RecordSnapshot {
		v, err := DecodeSnapshotValue(value)
		if err != nil {
			return err
		}
		rp.State[pk] = Persisted{StartOffset: v.StartOffset, Batches: v.Batches, DeliveryCompleteCount: v.DeliveryCompleteCount}
		return nil
	}
	v, err := DecodeUpdateValue(value)
	if err != nil {
		return err
	}
	cur, ok := rp.State[pk]
	if !ok {
		// An update without a snapshot before it: Kafka writes a snapshot
		// first, so treat the update as the whole state.
		cur = Persisted{StartOffset: v.StartOffset}
	}
	if v.StartOffset != -1 {
		cur.StartOffset = v.StartOffset
	}
	cur.Batches = mergeBatches(cur.Batches, v.Batches, cur.StartOffset)
	cur.DeliveryCompleteCount = v.DeliveryCompleteCount
	rp.State[pk] = cur
	return nil
}

// mergeBatches overlays upd on base and drops offsets below start. It
// works on ranges, never per offset: a batch may span any range.
func mergeBatches(base, upd []StateBatch, start int64) []StateBatch {
	var out []StateBatch
	for _, b := range base {
		out = overlay(out, b)
	}
	for _, b := range upd {
		out = overlay(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].First < out[j].First })
	var merged []StateBatch
	for _, b := range out {
		if b.Last < start {
			continue
		}
		b.First = max(b.First, start)
		if k := len(merged) - 1; k >= 0 && merged[k].Last == b.First-1 &&
			merged[k].State == b.State && merged[k].DeliveryCount == b.DeliveryCount {
			merged[k].Last = b.Last
			continue
		}
		merged = append(merged, b)
	}
	return merged
}

// overlay cuts b's range out of every batch in list and adds b.
func overlay(list []StateBatch, b StateBatch) []StateBatch {
	if b.First > b.Last {
		return list
	}
	out := list[:0:0]
	for _, o := range list {
		if o.Last < b.First || o.First > b.Last {
			out = append(out, o)
			continue
		}
		if o.First < b.First {
			left := o
			left.Last = b.First - 1
			out = append(out, left)
		}
		if o.Last > b.Last {
			right := o
			right.First = b.Last + 1
			out = append(out, right)
		}
	}
	return append(out, b)
}
