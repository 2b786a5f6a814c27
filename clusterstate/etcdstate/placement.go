package etcdstate

import (
	"fmt"
	"sort"

	"github.com/skiffmq/skiff/clusterstate"
)

// place assigns rf replicas to each of count partitions numbered from
// from, over brokers, the way Kafka's AdminUtils.assignReplicasToBrokers
// does: the first replicas go round-robin from start, each further one at
// a shift that grows every time the partitions have gone once round the
// brokers, so that leaders and followers spread evenly. When every broker
// has a rack the broker list alternates racks and a replica goes to a
// rack (and a broker) that holds none of the partition's replicas yet
// while there is one, so that a partition survives losing a rack.
// start is a random index in production and fixed in tests.
func place(brokers []clusterstate.Broker, from, count int32, rf int16, start int) ([][]int32, error) {
	n := len(brokers)
	if rf < 1 || int(rf) > n {
		return nil, fmt.Errorf("%w: Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered.",
			clusterstate.ErrInvalidReplicationFactor, rf, rf, n)
	}
	racks := map[int32]string{}
	aware := true
	for _, b := range brokers {
		if b.Rack == "" {
			aware = false
		}
		racks[b.NodeID] = b.Rack
	}
	var list []int32
	numRacks := 1
	if aware {
		list, numRacks = rackAlternated(brokers)
	} else {
		for _, b := range brokers {
			list = append(list, b.NodeID)
		}
		sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
	}
	start %= n
	shift := start
	out := make([][]int32, 0, count)
	for p := from; p < from+count; p++ {
		if p > 0 && int(p)%n == 0 {
			shift++
		}
		first := (int(p) + start) % n
		replicas := []int32{list[first]}
		if !aware {
			for j := 0; j < int(rf)-1; j++ {
				replicas = append(replicas, list[replicaIndex(first, shift, j, n)])
			}
			out = append(out, replicas)
			continue
		}
		usedRacks := map[string]bool{racks[list[first]]: true}
		used := map[int32]bool{list[first]: true}
		k := 0
		for len(replicas) < int(rf) {
			b := list[replicaIndex(first, shift*numRacks, k, n)]
			k++
			if (!usedRacks[racks[b]] || len(usedRacks) == numRacks) && (!used[b] || len(used) == n) {
				replicas = append(replicas, b)
				usedRacks[racks[b]] = true
				used[b] = true
			}
		}
		out = append(out, replicas)
	}
	return out, nil
}

// replicaIndex is the broker index of a partition's replica j+1, given
// its first replica's index and the current shift.
func replicaIndex(first, shift, j, n int) int {
	if n == 1 {
		return first
	}
	return (first + 1 + (shift+j)%(n-1)) % n
}

// rackAlternated lists the brokers taking one from each rack in turn
// (racks and the brokers within each sorted), e.g. a1 b1 c1 a2 b2 a3.
func rackAlternated(brokers []clusterstate.Broker) ([]int32, int) {
	byRack := map[string][]int32{}
	for _, b := range brokers {
		byRack[b.Rack] = append(byRack[b.Rack], b.NodeID)
	}
	racks := make([]string, 0, len(byRack))
	for r, ids := range byRack {
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		racks = append(racks, r)
	}
	sort.Strings(racks)
	var out []int32
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out, len(racks)
}
