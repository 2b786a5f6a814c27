package integration

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafka42Version is the Kafka 4.2 release Skiff's API table is held to.
const kafka42Version = "4.2.1"

// apiVersions42Known lists every intended difference between Skiff's
// ApiVersions answer and Kafka 4.2's, keyed by API name (as kmsg names
// it) or "feature <name>", with the reason. An API or feature whose
// ranges differ and is not listed fails TestApiVersionsMatchKafka42; so
// does an entry that matches no difference, so the table stays true. It
// is the README's table of ApiVersions differences.
var apiVersions42Known = map[string]string{
	"DescribeDelegationToken":    "delegation tokens are not implemented",
	"CreateDelegationToken":      "delegation tokens are not implemented",
	"RenewDelegationToken":       "delegation tokens are not implemented",
	"ExpireDelegationToken":      "delegation tokens are not implemented",
	"AddRaftVoter":               "Skiff has no KRaft quorum whose voters could change",
	"RemoveRaftVoter":            "Skiff has no KRaft quorum whose voters could change",
	"UnregisterBroker":           "one node, no broker registrations",
	"AlterReplicaLogDirs":        "one log directory: replicas cannot move between directories",
	"ListConfigResources":        "KIP-1142 is not implemented",
	"InitializeShareGroupState":  "the share coordinator's inter-broker persister RPC (KIP-932): Skiff is one node and keeps share state itself",
	"ReadShareGroupState":        "the share coordinator's inter-broker persister RPC (KIP-932): Skiff is one node and keeps share state itself",
	"WriteShareGroupState":       "the share coordinator's inter-broker persister RPC (KIP-932): Skiff is one node and keeps share state itself",
	"DeleteShareGroupState":      "the share coordinator's inter-broker persister RPC (KIP-932): Skiff is one node and keeps share state itself",
	"ReadShareGroupStateSummary": "the share coordinator's inter-broker persister RPC (KIP-932): Skiff is one node and keeps share state itself",

	"ListOffsets":                              "v11 (KIP-1023) lists the earliest offset pending upload to tiered storage; Skiff has no tiered storage, so it stops at v10",
	"OffsetCommit":                             "v10 (KIP-848) names topics by ID instead of name; Skiff serves v9, which clients fall back to",
	"OffsetFetch":                              "v10 (KIP-848) names topics by ID instead of name; Skiff serves v9, which clients fall back to",
	"WriteTxnMarkers":                          "v2 (KIP-1228) adds the transaction version to each marker; an inter-broker RPC, and Skiff's transaction coordinator writes its markers in-process",
	"feature metadata.version":                 "Skiff implements one metadata level, 27 (4.1-IV1), the one its API table was built against; Kafka 4.2.1 supports 7-29 and finalizes 29 (4.2-IV1). Clients do not switch on it",
	"feature kraft.version":                    "Skiff has no KRaft quorum; Kafka formatted --standalone finalizes kraft.version 1 (KIP-853)",
	"feature eligible.leader.replicas.version": "Skiff has one replica per partition and no ELR (KIP-966); clients do not switch on it",
}

// apiRange is one ApiVersions entry: an API's version range, or a
// feature's supported range and finalized level (-1 if not finalized).
type apiRange struct{ Min, Max, Finalized int16 }

func (r apiRange) String() string {
	if r.Finalized == 0 && r.Min == 0 && r.Max == 0 {
		return "absent"
	}
	return fmt.Sprintf("%d-%d finalized %d", r.Min, r.Max, r.Finalized)
}

// apiVersionsTable asks addr for ApiVersions and returns its APIs by name
// and its features by "feature <name>".
func apiVersionsTable(t *testing.T, addr string) map[string]apiRange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "skiff-apiversions42", "1.0"
	resp, err := req.RequestWith(ctx, newClient(t, addr))
	if err != nil {
		t.Fatalf("ApiVersions from %s: %v", addr, err)
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions from %s: error %d", addr, resp.ErrorCode)
	}
	out := make(map[string]apiRange)
	for _, k := range resp.ApiKeys {
		out[kmsg.NameForKey(k.ApiKey)] = apiRange{Min: k.MinVersion, Max: k.MaxVersion, Finalized: -1}
	}
	for _, f := range resp.SupportedFeatures {
		out["feature "+f.Name] = apiRange{Min: f.MinVersion, Max: f.MaxVersion, Finalized: -1}
	}
	for _, f := range resp.FinalizedFeatures {
		r := out["feature "+f.Name]
		r.Finalized = f.MaxVersionLevel
		out["feature "+f.Name] = r
	}
	return out
}

// TestApiVersionsMatchKafka42: Skiff's whole ApiVersions answer (every
// API's version range, every supported feature's range and finalized
// level) equals that of a freshly formatted one-node Apache Kafka 4.2,
// but for the differences apiVersions42Known lists with their reasons.
func TestApiVersionsMatchKafka42(t *testing.T) {
	kafka := startKafka(t, kafkaOptions{version: kafka42Version})
	skiff := startBroker(t, nil)
	want := apiVersionsTable(t, kafka.addr)
	got := apiVersionsTable(t, skiff.Addr())

	used := make(map[string]bool)
	all := maps.Clone(want)
	maps.Copy(all, got)
	names := slices.Sorted(maps.Keys(all))
	for _, name := range names {
		w, g := want[name], got[name]
		if w == g {
			continue
		}
		if reason, ok := apiVersions42Known[name]; ok {
			used[name] = true
			t.Logf("known difference %s: Kafka %s %s, Skiff %s (%s)", name, kafka42Version, w, g, reason)
			continue
		}
		t.Errorf("%s: Kafka %s advertises %s, Skiff %s", name, kafka42Version, w, g)
	}
	for name := range apiVersions42Known {
		if !used[name] {
			t.Errorf("apiVersions42Known lists %s, but Skiff and Kafka %s now agree on it", name, kafka42Version)
		}
	}
}
