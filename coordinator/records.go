package coordinator

import (
	"encoding/binary"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// __consumer_offsets record formats, exactly as Kafka writes them so that
// Kafka tools reading the topic understand Skiff's and vice versa:
//
//	key version 0/1: OffsetCommitKey{group, topic, partition}
//	key version 2:   GroupMetadataKey{group}
//	key version 3+:  KIP-848 consumer group records (see consumer_records.go)
//
// A nil value is a tombstone.
const (
	offsetCommitKeyVersion  = 1
	groupMetadataKeyVersion = 2
	// Kafka writes OffsetCommitValue v1 only when the commit carries an
	// explicit expiry (OffsetCommit v2-v4 retention time), v3 otherwise.
	offsetCommitValueVersion       = 3
	offsetCommitValueExpireVersion = 1
	// v3 is the last non-flexible version and the one Kafka writes.
	groupMetadataValueVersion = 3
)

// partitionFor is Kafka's rule for the __consumer_offsets partition of a
// group: abs(groupId.hashCode()) % partitions, with Java's String.hashCode
// over UTF-16 code units and Kafka's Utils.abs (MIN_VALUE maps to 0).
func partitionFor(group string, partitions int) int {
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return int(h) % partitions
}

func offsetCommitKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetCommitValue(o *offsetEntry) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetCommitValueVersion
	if o.expireTime >= 0 {
		v.Version = offsetCommitValueExpireVersion
		v.ExpireTimestamp = o.expireTime
	}
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTime
	return v.AppendTo(nil)
}

func groupMetadataKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupMetadataKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// groupMetadataValue snapshots a classic group after a generation
// completes, with the assignment each member got.
func groupMetadataValue(grp *group, assignment map[string][]byte) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupMetadataValueVersion
	v.ProtocolType = grp.protocolType
	v.Generation = grp.generation
	if grp.protocol != "" {
		p := grp.protocol
		v.Protocol = &p
	}
	if grp.leader != "" {
		l := grp.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = -1
	if !grp.stateTime.IsZero() {
		v.CurrentStateTimestamp = grp.stateTime.UnixMilli()
	}
	for _, m := range grp.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = m.rebalanceTimeoutMs
		vm.SessionTimeoutMillis = m.sessionTimeoutMs
		vm.Subscription = m.metadataFor(grp.protocol)
		vm.Assignment = assignment[m.id]
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// keyVersion returns the version prefix every __consumer_offsets key has.
func keyVersion(key []byte) (int16, bool) {
	if len(key) < 2 {
		return 0, false
	}
	return int16(binary.BigEndian.Uint16(key)), true
}
