package coordinator

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat status codes (StreamsGroupHeartbeatResponse.Status).
const (
	statusStaleTopology                = 0
	statusMissingSourceTopics          = 1
	statusIncorrectlyPartitionedTopics = 2
	statusMissingInternalTopics        = 3
	statusShutdownApplication          = 4
	statusAssignmentDelayed            = 5
)

// StreamsInternalTopic is a repartition or changelog topic that a streams
// group needs and that does not exist yet; the server creates it, as
// Kafka's broker does from the coordinator's answer (KIP-1071).
type StreamsInternalTopic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16 // -1: the broker's default
	Configs           map[string]string
}

// configuredTopology is a topology resolved against the cluster's topics,
// as Kafka's InternalTopicManager.configureTopics resolves it.
type configuredTopology struct {
	// taskCounts is the number of tasks (partitions) of each subtopology;
	// nil when the topology is not ready.
	taskCounts map[string]int32
	// sourceTopics lists the topics a subtopology's task p reads partition
	// p of (source and repartition source topics, regexes resolved);
	// changelogs the changelog topics its state stores write.
	sourceTopics map[string][]string
	changelogs   map[string][]string
	regexTopics  []string // topics some source regex matched
	status       []kmsg.StreamsGroupHeartbeatResponseStatus
	toCreate     []StreamsInternalTopic
}

func (c *configuredTopology) ready() bool { return c.taskCounts != nil }

func statusOf(code int8, format string, args ...any) kmsg.StreamsGroupHeartbeatResponseStatus {
	s := kmsg.NewStreamsGroupHeartbeatResponseStatus()
	s.StatusCode, s.StatusDetail = code, fmt.Sprintf(format, args...)
	return s
}

// topologyTopics is every topic name a topology refers to, regex matches
// included, sorted: the topics whose partition counts the metadata hash
// covers.
func topologyTopics(t *kmsg.StreamsGroupHeartbeatRequestTopology, allTopics func() []string) []string {
	var out []string
	var all []string
	for _, st := range t.Subtopologies {
		out = append(out, st.SourceTopics...)
		out = append(out, st.RepartitionSinkTopics...)
		for _, ti := range st.RepartitionSourceTopics {
			out = append(out, ti.Topic)
		}
		for _, ti := range st.StateChangelogTopics {
			out = append(out, ti.Topic)
		}
		if len(st.SourceTopicRegex) > 0 {
			if all == nil {
				all = allTopics() // only regexes need every topic's name
			}
			out = append(out, regexMatches(st.SourceTopicRegex, all)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// regexMatches are the topics that one of the patterns matches as a whole
// (Java's Matcher.matches); internal topics starting with "__" excluded.
func regexMatches(patterns, all []string) []string {
	var out []string
	for _, p := range patterns {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			continue
		}
		for _, t := range all {
			if !strings.HasPrefix(t, "__") && re.MatchString(t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// metadataHashLocked hashes the partition counts of the topology's
// topics; a topic that appears, disappears or grows changes it.
func (g *Groups) streamsMetadataHashLocked(t *kmsg.StreamsGroupHeartbeatRequestTopology) int64 {
	if t == nil {
		return 0
	}
	h := fnv.New64a()
	for _, name := range topologyTopics(t, g.topics.TopicNames) {
		n, ok := g.topics.PartitionCount(name)
		if !ok {
			n = -1
		}
		fmt.Fprintf(h, "%s:%d;", name, n)
	}
	return int64(h.Sum64())
}

// configureTopologyLocked resolves the topology: source topics must exist,
// repartition topics without a partition count take the largest task
// count of the subtopologies writing to them, copartitioned topics must
// agree, changelogs have one partition per task; internal topics that do
// not exist are returned for creation.
func (g *Groups) configureTopologyLocked(t *kmsg.StreamsGroupHeartbeatRequestTopology) *configuredTopology {
	c := &configuredTopology{sourceTopics: map[string][]string{}, changelogs: map[string][]string{}}
	all := g.topics.TopicNames()
	count := func(topic string) int32 {
		n, ok := g.topics.PartitionCount(topic)
		if !ok {
			return 0
		}
		return n
	}

	var missing []string
	for _, st := range t.Subtopologies {
		for _, s := range st.SourceTopics {
			if count(s) == 0 {
				missing = append(missing, s)
			}
		}
		matched := regexMatches(st.SourceTopicRegex, all)
		c.regexTopics = append(c.regexTopics, matched...)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		missing = slices.Compact(missing)
		c.status = append(c.status, statusOf(statusMissingSourceTopics, "Source topics %s are missing.", strings.Join(missing, ", ")))
		return c
	}

	// Partition counts of repartition topics: fixed, or derived from the
	// subtopologies that write them, until nothing changes.
	repart := map[string]int32{}
	for _, st := range t.Subtopologies {
		for _, ti := range st.RepartitionSourceTopics {
			repart[ti.Topic] = max(repart[ti.Topic], ti.NumPartitions)
		}
	}
	tasksOf := func(st *kmsg.StreamsGroupHeartbeatRequestTopologySubtopology) int32 {
		var n int32
		for _, s := range st.SourceTopics {
			n = max(n, count(s))
		}
		for _, s := range regexMatches(st.SourceTopicRegex, all) {
			n = max(n, count(s))
		}
		for _, ti := range st.RepartitionSourceTopics {
			n = max(n, repart[ti.Topic])
		}
		return n
	}
	for changed := true; changed; {
		changed = false
		for i := range t.Subtopologies {
			st := &t.Subtopologies[i]
			n := tasksOf(st)
			for _, sink := range st.RepartitionSinkTopics {
				if fixed, ok := repart[sink]; ok && n > fixed && !fixedRepartition(t, sink) {
					repart[sink] = n
					changed = true
				}
			}
		}
		// Copartitioned repartition topics without a fixed count take the
		// count of their group's other topics.
		for i := range t.Subtopologies {
			st := &t.Subtopologies[i]
			for _, cg := range st.CopartitionGroups {
				var n int32
				for _, idx := range cg.SourceTopics {
					if int(idx) < len(st.SourceTopics) {
						n = max(n, count(st.SourceTopics[idx]))
					}
				}
				for _, idx := range cg.RepartitionSourceTopics {
					if int(idx) < len(st.RepartitionSourceTopics) {
						n = max(n, repart[st.RepartitionSourceTopics[idx].Topic])
					}
				}
				for _, idx := range cg.RepartitionSourceTopics {
					if int(idx) < len(st.RepartitionSourceTopics) {
						name := st.RepartitionSourceTopics[idx].Topic
						if repart[name] < n && !fixedRepartition(t, name) {
							repart[name] = n
							changed = true
						}
					}
				}
			}
		}
	}

	// Copartitioned source topics must have the same partition count.
	for _, st := range t.Subtopologies {
		for _, cg := range st.CopartitionGroups {
			counts := map[int32][]string{}
			for _, idx := range cg.SourceTopics {
				if int(idx) < len(st.SourceTopics) {
					s := st.SourceTopics[idx]
					counts[count(s)] = append(counts[count(s)], s)
				}
			}
			if len(counts) > 1 {
				c.status = append(c.status, statusOf(statusIncorrectlyPartitionedTopics,
					"Following topics do not have the same number of partitions: [%s]", strings.Join(flatten(counts), ", ")))
				return c
			}
		}
	}

	counts := map[string]int32{}
	var wrong []string
	need := func(ti kmsg.TopicInfo, partitions int32) {
		name := ti.Topic
		have := count(name)
		switch {
		case have == 0:
			it := StreamsInternalTopic{Name: name, Partitions: partitions, ReplicationFactor: ti.ReplicationFactor, Configs: map[string]string{}}
			if it.ReplicationFactor == 0 {
				it.ReplicationFactor = -1
			}
			for _, kv := range ti.Configs {
				it.Configs[kv.Key] = kv.Value
			}
			c.toCreate = append(c.toCreate, it)
		case have != partitions:
			wrong = append(wrong, name)
		}
	}
	seen := map[string]bool{}
	for i := range t.Subtopologies {
		st := &t.Subtopologies[i]
		n := tasksOf(st)
		counts[st.SubtopologyID] = n
		srcs := slices.Clone(st.SourceTopics)
		srcs = append(srcs, regexMatches(st.SourceTopicRegex, all)...)
		for _, ti := range st.RepartitionSourceTopics {
			srcs = append(srcs, ti.Topic)
			if !seen[ti.Topic] {
				seen[ti.Topic] = true
				need(ti, repart[ti.Topic])
			}
		}
		c.sourceTopics[st.SubtopologyID] = srcs
		for _, ti := range st.StateChangelogTopics {
			c.changelogs[st.SubtopologyID] = append(c.changelogs[st.SubtopologyID], ti.Topic)
			if !seen[ti.Topic] {
				seen[ti.Topic] = true
				p := n
				if ti.NumPartitions > 0 {
					p = ti.NumPartitions
				}
				need(ti, p)
			}
		}
	}
	if len(wrong) > 0 {
		slices.Sort(wrong)
		c.status = append(c.status, statusOf(statusIncorrectlyPartitionedTopics,
			"Following topics do not have the same number of partitions: [%s]", strings.Join(wrong, ", ")))
		return c
	}
	if len(c.toCreate) > 0 {
		names := make([]string, len(c.toCreate))
		for i, it := range c.toCreate {
			names[i] = it.Name
		}
		c.status = append(c.status, statusOf(statusMissingInternalTopics, "Internal topics are missing: [%s]", strings.Join(names, ", ")))
		return c
	}
	c.taskCounts = counts
	return c
}

// fixedRepartition: the topology gave the repartition topic a partition
// count (repartition(Repartitioned.numberOfPartitions)).
func fixedRepartition(t *kmsg.StreamsGroupHeartbeatRequestTopology, name string) bool {
	for _, st := range t.Subtopologies {
		for _, ti := range st.RepartitionSourceTopics {
			if ti.Topic == name && ti.NumPartitions > 0 {
				return true
			}
		}
	}
	return false
}

func flatten(m map[int32][]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v...)
	}
	slices.Sort(out)
	return out
}
