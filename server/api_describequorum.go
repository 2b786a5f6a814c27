package server

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeQuorum (KIP-595; v1 KIP-836, v2 KIP-853) at Kafka 4.1's versions.
func init() { register(kmsg.DescribeQuorum, 0, 2, (*Server).handleDescribeQuorum) }

// The KRaft metadata log that DescribeQuorum describes in Kafka.
const (
	metadataTopicName   = "__cluster_metadata"
	metadataPartition   = 0
	quorumLeaderEpoch   = 1  // the one election a lone voter ever wins
	quorumOffsetUnknown = -1 // "unknown" in DescribeQuorumResponse.json
)

// handleDescribeQuorum answers as the leader of a quorum with one voter,
// this node, and no observers: that is what a one-node Skiff is. Kafka
// keeps cluster metadata in a Raft log; Skiff keeps it in meta.json, so
// there are no metadata log offsets to report and the high watermark and
// log end offset are -1, the protocol's "unknown". Leadership never moves,
// so the leader epoch is a constant. As KafkaRaftClient does, a request
// for anything but __cluster_metadata-0 gets UNKNOWN_TOPIC_OR_PARTITION
// on every partition it asked about.
func (s *Server) handleDescribeQuorum(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeQuorumRequest)
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)

	if len(req.Topics) != 1 || req.Topics[0].Topic != metadataTopicName ||
		len(req.Topics[0].Partitions) != 1 || req.Topics[0].Partitions[0].Partition != metadataPartition {
		code := kerr.UnknownTopicOrPartition
		for _, rt := range req.Topics {
			t := kmsg.NewDescribeQuorumResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewDescribeQuorumResponseTopicPartition()
				p.Partition = rp.Partition
				p.ErrorCode = code.Code
				p.ErrorMessage = kmsg.StringPtr(code.Description)
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil
	}

	// Kafka reports the current time as the leader's own fetch and
	// caught-up times.
	now := time.Now().UnixMilli()
	voter := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	voter.ReplicaID = s.cfg.NodeID
	// ReplicaDirectoryID stays zero, as for a statically configured voter.
	voter.LogEndOffset = quorumOffsetUnknown
	voter.LastFetchTimestamp = now
	voter.LastCaughtUpTimestamp = now

	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.Partition = metadataPartition
	p.LeaderID = s.cfg.NodeID
	p.LeaderEpoch = quorumLeaderEpoch
	p.HighWatermark = quorumOffsetUnknown
	p.CurrentVoters = []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{voter}
	if s.cfg.Cluster != nil {
		// A cluster's metadata quorum is etcd's, whose members are not
		// Kafka nodes. What Kafka's tools mean by it is who may become
		// controller and who is: every live broker campaigns, and the
		// elected one leads.
		p.LeaderID = s.controllerID()
		p.CurrentVoters = p.CurrentVoters[:0]
		for _, b := range s.cfg.Cluster.Brokers() {
			v := voter
			v.ReplicaID = b.NodeID
			p.CurrentVoters = append(p.CurrentVoters, v)
		}
	}
	p.Observers = []kmsg.DescribeQuorumResponseTopicPartitionReplicaState{}
	t := kmsg.NewDescribeQuorumResponseTopic()
	t.Topic = metadataTopicName
	t.Partitions = []kmsg.DescribeQuorumResponseTopicPartition{p}
	resp.Topics = []kmsg.DescribeQuorumResponseTopic{t}

	if req.Version >= 2 && s.cfg.Cluster != nil {
		for _, b := range s.cfg.Cluster.Brokers() {
			node := kmsg.NewDescribeQuorumResponseNode()
			node.NodeID = b.NodeID
			for _, e := range b.Endpoints {
				nl := kmsg.NewDescribeQuorumResponseNodeListener()
				nl.Name, nl.Host, nl.Port = e.Listener, e.Host, uint16(e.Port)
				node.Listeners = append(node.Listeners, nl)
			}
			resp.Nodes = append(resp.Nodes, node)
		}
	} else if req.Version >= 2 {
		// A Kafka voter lists its controller listeners. Skiff has no
		// separate controller listener: every listener answers the
		// controller's APIs, so every listener is the voter's.
		node := kmsg.NewDescribeQuorumResponseNode()
		node.NodeID = s.cfg.NodeID
		for _, l := range s.cfg.listeners {
			nl := kmsg.NewDescribeQuorumResponseNodeListener()
			nl.Name = l.name
			nl.Host = l.advertHost
			nl.Port = uint16(l.advertPort)
			node.Listeners = append(node.Listeners, nl)
		}
		resp.Nodes = []kmsg.DescribeQuorumResponseNode{node}
	}
	return resp, nil
}
