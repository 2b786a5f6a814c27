package integration

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeQuorumAnswersAsSingleVoter: kafka-metadata-quorum failed
// with UNSUPPORTED_VERSION because Skiff had no DescribeQuorum. A
// one-node Skiff answers at every version as the leader and only voter of
// __cluster_metadata-0, with no observers, and from v2 lists its
// listeners as the voter's endpoints.
func TestDescribeQuorumAnswersAsSingleVoter(t *testing.T) {
	b := startBroker(t, nil)
	cl := newClient(t, b.Addr())
	// A raw connection, so each request goes at the version it names.
	c := dialRaw(t, b.Addr())

	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(testContext(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	var advertised []int16
	for _, k := range av.ApiKeys {
		if k.ApiKey == int16(kmsg.DescribeQuorum) {
			advertised = []int16{k.MinVersion, k.MaxVersion}
		}
	}
	if fmt.Sprint(advertised) != "[0 2]" {
		t.Fatalf("ApiVersions advertises DescribeQuorum versions %v, want 0 to 2", advertised)
	}

	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrDescribeQuorumRequest()
		req.Version = v
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
		req.Topics = []kmsg.DescribeQuorumRequestTopic{rt}
		resp := roundTrip(t, c, req, int32(v)).(*kmsg.DescribeQuorumResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Topic != "__cluster_metadata" ||
			len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.Partition != 0 || p.LeaderID != 0 || p.LeaderEpoch != 1 || p.HighWatermark != -1 ||
			len(p.CurrentVoters) != 1 || len(p.Observers) != 0 {
			t.Errorf("v%d partition: %+v", v, p)
			continue
		}
		voter := p.CurrentVoters[0]
		if voter.ReplicaID != 0 || voter.LogEndOffset != -1 || voter.ReplicaDirectoryID != [16]byte{} {
			t.Errorf("v%d voter: %+v", v, voter)
		}
		// Kafka reports the current time as the leader's own fetch times
		// (v1+); v0 has no such fields and they decode as the default -1.
		if fetched := voter.LastFetchTimestamp > 0 && voter.LastCaughtUpTimestamp > 0; fetched != (v >= 1) {
			t.Errorf("v%d voter timestamps: fetch %d caught up %d", v, voter.LastFetchTimestamp, voter.LastCaughtUpTimestamp)
		}
		if v < 2 {
			if len(resp.Nodes) != 0 {
				t.Errorf("v%d has nodes: %+v", v, resp.Nodes)
			}
			continue
		}
		host, port := quorumHostPort(t, b.Addr())
		if len(resp.Nodes) != 1 || resp.Nodes[0].NodeID != 0 || len(resp.Nodes[0].Listeners) != 1 {
			t.Fatalf("v2 nodes: %+v", resp.Nodes)
		}
		if l := resp.Nodes[0].Listeners[0]; l.Name != "PLAINTEXT" || l.Host != host || int(l.Port) != port {
			t.Errorf("v2 voter listener %+v, want PLAINTEXT %s:%d", l, host, port)
		}
	}

	// Any other partition is unknown, per partition asked for, as
	// KafkaRaftClient answers.
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Version = 2 // error messages are v2+
	for _, name := range []string{"__cluster_metadata", "other"} {
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = name
		rp := kmsg.NewDescribeQuorumRequestTopicPartition()
		rp.Partition = 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp := roundTrip(t, c, req, 3).(*kmsg.DescribeQuorumResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 2 {
		t.Fatalf("unknown partitions: %+v", resp)
	}
	for _, rt := range resp.Topics {
		if len(rt.Partitions) != 1 || rt.Partitions[0].Partition != 1 ||
			rt.Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || rt.Partitions[0].ErrorMessage == nil {
			t.Errorf("topic %s: %+v, want partition 1 UNKNOWN_TOPIC_OR_PARTITION with a message", rt.Topic, rt.Partitions)
		}
	}
}

func quorumHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, p
}
