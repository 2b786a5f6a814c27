package integration

import "strings"

// Every intended difference between Skiff and Apache Kafka 4.1 that the
// differential test sees, keyed "<scenario> <path>", with the reason. In a
// path, * matches any run of characters. A difference not listed here
// fails TestDifferential; an entry that no longer matches anything fails
// it too, so the list stays true.
var diffKnown = map[string]string{
	// APIs Skiff does not implement, so does not advertise.
	"ApiVersions [1][*DelegationToken,*":                "delegation tokens are not implemented",
	"ApiVersions [1][*ShareGroupState*":                 "the share coordinator's inter-broker persister RPCs (KIP-932): Skiff is one node and keeps share state itself",
	"ApiVersions [1][Share*,7*].Max":                    diffKnownShare42,
	"ApiVersions [1][DescribeShareGroupOffsets,90].Max": diffKnownShare42,
	"ApiVersions [1][*RaftVoter,*":                      "Skiff has no KRaft quorum whose voters could change",
	"ApiVersions [1][UnregisterBroker,64]":              "one node, no broker registrations",
	"ApiVersions [1][AlterReplicaLogDirs,34]":           "one log directory: replicas cannot move between directories",
	"ApiVersions [1][ListConfigResources,74]":           "KIP-1142 (new in 4.1) is not implemented",
	"ApiVersions [2][kraft.version]":                    "Skiff has no KRaft quorum; Kafka formatted --standalone finalizes kraft.version 1 (dynamic quorum, KIP-853)",
	"ApiVersions [1][StreamsGroup*,8*]":                 diffKnownStreams42,
	"ApiVersions [2][streams.version]":                  diffKnownStreams42,
	"ApiVersions [2][share.version]":                    "Skiff finalizes share.version 1 as Kafka 4.2 does on new clusters (share groups production-ready); the reference Kafka 4.1 formats it at 0 (share groups were a preview)",
	"ApiVersions [2][eligible.leader.replicas.version]": "Skiff has one replica per partition and no ELR (KIP-966), which Kafka 4.1 finalizes on new clusters; clients do not switch on it",

	// Configs.
	"CreateTopicsEdgeCases [0].Topics[*].Configs[min.insync.replicas].Source":            diffKnownMinISR,
	"CreateTopicsValidateOnly [0].Topics[v].Configs[min.insync.replicas].Source":         diffKnownMinISR,
	"DescribeConfigsTopic [0].Resources[TOPIC,t].Configs[min.insync.replicas].*":         diffKnownMinISR,
	"DescribeConfigsTopic [0].Resources[TOPIC,plain].Configs[retention.ms].*":            diffKnownRetentionSynonyms,
	"DescribeConfigsTopic [0].Resources[TOPIC,plain].Configs[segment.ms].ConfigSynonyms": diffKnownRetentionSynonyms,
	"AlterConfigsTopic *Configs[retention.ms].Source":                                    diffKnownRetentionSynonyms,
	"IncrementalAlterConfigsTopic *Configs[retention.ms].Source":                         diffKnownRetentionSynonyms,
	"IncrementalAlterConfigsValidateOnly *Configs[retention.ms].Source":                  diffKnownRetentionSynonyms,
	"DescribeConfigsTopic [0].Resources[TOPIC,t].Configs[retention.ms].ConfigSynonyms":   "Kafka's ConfigHelper drops every synonym listed before log.retention.ms, so it shows no broker synonym for retention.ms unless log.retention.ms itself is set; Skiff lists log.retention.hours, where the value comes from (TestAlterConfigsIncrementalAndLegacy relies on it)",
	"DescribeConfigsBroker [0].Resources[BROKER,].Configs[message.max.bytes].ReadOnly":   "Skiff cannot change broker configs at run time, so it marks every one read-only; Kafka can change message.max.bytes cluster-wide",

	// Share groups (the reference Kafka 4.1 with share.version=1 finalized).
	"ShareGroupLifecycle [0].Groups[0].*Epoch":                              "Kafka bumps the group epoch twice for a first member (the join, then the target assignment it computes after answering); Skiff assigns in the join heartbeat, one epoch",
	"ShareGroupLifecycle [4].Groups[0].Topics[t].Partitions[0].StartOffset": "Kafka reports -1 until the share-partition's start offset is first written to __share_group_state (on an acknowledgement); Skiff persists the share.auto.offset.reset start offset when the share-partition is initialized, and reports it",
	"ShareGroupLifecycle [5].ErrorCode":                                     "AlterShareGroupOffsets on a group with members: Kafka 4.1.2 answers no error and no topics, altering nothing; Skiff answers NON_EMPTY_GROUP, as KIP-932 requires an empty group",

	"ShareFetchAcknowledge [4].Groups[0].Topics[t].Partitions[0].StartOffset": "after offset 0 is accepted, 1 released and 2 rejected, Kafka 4.1.2 still reports start offset 0; Skiff reports 1. Kafka's SharePartition moves its in-memory SPSO to 1 too (canMoveStartOffset, findLastOffsetAcknowledged), but the state it persists with the acknowledgement still has start offset 0 with the batch marked acknowledged (TestShareStateRecordsKafkaWrote decodes it), and DescribeShareGroupOffsets reads that",

	// Produce.
	"ProduceIdempotentSequences [2].Topics[].Partitions[0].LogAppendTime": "for a duplicate batch Kafka echoes the batch's max timestamp as log_append_time even on a CreateTime topic; Skiff answers -1 as for any CreateTime append, which is what the field means",
}

const diffKnownRetentionSynonyms = "Kafka's ConfigHelper drops every broker synonym listed before the primary one (log.retention.ms, log.roll.ms), so with only log.retention.hours set it reports retention.ms as DEFAULT_CONFIG with no synonyms although the value comes from log.retention.hours; Skiff reports STATIC_BROKER_CONFIG and the synonym the value comes from (TestAlterConfigsIncrementalAndLegacy relies on it)"

const diffKnownShare42 = "Skiff advertises Kafka 4.2's share group versions (ShareFetch and ShareAcknowledge v2, KIP-1206/KIP-1222; DescribeShareGroupOffsets v1 with Lag, KIP-1226); the reference Kafka is 4.1"

const diffKnownMinISR = "Kafka's StorageTool format (4.x, KIP-966) writes a cluster-wide dynamic min.insync.replicas=1; Skiff has no format step, so the same value is its static default"

// knownDifference returns the entry that documents the difference at path
// in scenario, and its reason; "" if none does.
func knownDifference(scenario, path string) (key, reason string) {
	for k, r := range diffKnown {
		name, pattern, _ := strings.Cut(k, " ")
		if name == scenario && globMatch(pattern, path) {
			return k, r
		}
	}
	return "", ""
}

// globMatch reports whether s matches pattern, where * matches any run of
// characters and everything else (brackets included) only itself.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// diffKnownStreams42: Kafka 4.2 made KIP-1071 streams groups
// production-ready (StreamsGroupHeartbeat and StreamsGroupDescribe v0,
// streams.version 1 finalized on new clusters) and Skiff serves them; the
// reference Kafka 4.1.2 neither advertises the two APIs nor lists
// streams.version (seen in its ApiVersions answer: the streams protocol was
// early access there, behind unstable API versions), so no streams group
// scenario can be compared against it. TestApiVersionsMatchKafka42 checks
// the two APIs and the feature against Kafka 4.2.1 instead.
const diffKnownStreams42 = "Skiff serves KIP-1071 streams groups as Kafka 4.2 does (production-ready there, streams.version 1); the reference Kafka 4.1.2 does not advertise them (early access, unstable API versions)"
