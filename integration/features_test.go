package integration

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// apiVersionFeatures returns the supported ranges and finalized levels an
// ApiVersions v3+ answer reports, and the finalized epoch.
func apiVersionFeatures(t *testing.T, addr string) (supported map[string][2]int16, finalized map[string]int16, epoch int64) {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "skiff-test", "1"
	resp, err := req.RequestWith(testContext(t), newClient(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version < 3 {
		t.Fatalf("ApiVersions answered at v%d, want v3+", resp.Version)
	}
	supported, finalized = map[string][2]int16{}, map[string]int16{}
	for _, f := range resp.SupportedFeatures {
		supported[f.Name] = [2]int16{f.MinVersion, f.MaxVersion}
	}
	for _, f := range resp.FinalizedFeatures {
		if f.MinVersionLevel != f.MaxVersionLevel {
			t.Errorf("finalized %s has min level %d, max %d; Kafka finalizes one level", f.Name, f.MinVersionLevel, f.MaxVersionLevel)
		}
		finalized[f.Name] = f.MaxVersionLevel
	}
	return supported, finalized, resp.FinalizedFeaturesEpoch
}

// updateFeatures sends one UpdateFeatures request at version v and returns
// its top-level error (nil for none) and message.
func updateFeatures(t *testing.T, addr string, v int16, validateOnly bool, updates ...kmsg.UpdateFeaturesRequestFeatureUpdate) (*kmsg.UpdateFeaturesResponse, error, string) {
	t.Helper()
	mv := kversion.Stable()
	mv.SetMaxKeyVersion(int16(kmsg.UpdateFeatures), v)
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis, req.ValidateOnly, req.FeatureUpdates = 5000, validateOnly, updates
	resp, err := req.RequestWith(testContext(t), newClient(t, addr, kgo.MaxVersions(mv)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version != v {
		t.Fatalf("UpdateFeatures answered at v%d, want v%d", resp.Version, v)
	}
	msg := ""
	if resp.ErrorMessage != nil {
		msg = *resp.ErrorMessage
	}
	return resp, kerr.ErrorForCode(resp.ErrorCode), msg
}

func featureUpdate(name string, level int16, upgradeType int8) kmsg.UpdateFeaturesRequestFeatureUpdate {
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = name, level, upgradeType
	return u
}

// TestFeatureLevels: ApiVersions reports the levels Skiff implements
// (metadata.version 27 = Kafka 4.1-IV1, transaction.version 2, group.version
// 1, share.version 1 and streams.version 1 as Kafka 4.2) and nothing else; UpdateFeatures
// validates as Kafka 4.1.2's controller does (the messages below are what
// it answered to the same requests); a downgrade is applied, bumps the epoch and survives a restart.
func TestFeatureLevels(t *testing.T) {
	b := startBroker(t, nil)
	addr := b.Addr()
	supported, finalized, epoch := apiVersionFeatures(t, addr)
	wantSupported := map[string][2]int16{"metadata.version": {27, 27}, "transaction.version": {0, 2}, "group.version": {0, 1}, "share.version": {0, 1}, "streams.version": {0, 1}}
	if !maps.Equal(supported, wantSupported) {
		t.Errorf("supported features %v, want %v", supported, wantSupported)
	}
	wantFinal := map[string]int16{"metadata.version": 27, "transaction.version": 2, "group.version": 1, "share.version": 1, "streams.version": 1}
	if !maps.Equal(finalized, wantFinal) {
		t.Errorf("finalized features %v, want %v", finalized, wantFinal)
	}
	if epoch < 0 {
		t.Fatalf("finalized features epoch %d: clients ignore the finalized levels of a negative epoch", epoch)
	}

	prefix := "The update failed for all features since the following feature had an error: "
	for _, c := range []struct {
		v       int16
		update  kmsg.UpdateFeaturesRequestFeatureUpdate
		wantMsg string // "" for success
	}{
		{1, featureUpdate("unknown.feature", 1, 1), "Invalid update version 1 for feature unknown.feature. Local controller 0 does not support this feature."},
		{1, featureUpdate("transaction.version", 5, 1), "Invalid update version 5 for feature transaction.version. Local controller 0 only supports versions 0-2"},
		{1, featureUpdate("transaction.version", 1, 1), "Invalid update version 1 for feature transaction.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."},
		{1, featureUpdate("transaction.version", -1, 1), "Invalid update version -1 for feature transaction.version. A feature version cannot be less than 0."},
		{1, featureUpdate("transaction.version", 2, 0), "Invalid update version 2 for feature transaction.version. The controller does not support the given upgrade type."},
		{2, featureUpdate("transaction.version", 2, 4), "Invalid update version 2 for feature transaction.version. The controller does not support the given upgrade type."},
		{1, featureUpdate("metadata.version", 26, 2), "Invalid update version 26 for feature metadata.version. Local controller 0 only supports versions 27-27"},
		// v0's allow_downgrade is ignored by Kafka 4.1: a v0 downgrade is refused.
		{0, kmsg.UpdateFeaturesRequestFeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 1, AllowDowngrade: true}, "Invalid update version 1 for feature transaction.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."},
		{1, featureUpdate("transaction.version", 1, 2), ""},
		{1, featureUpdate("transaction.version", 0, 3), ""},
		{1, featureUpdate("group.version", 0, 2), ""},
		{2, featureUpdate("transaction.version", 2, 1), ""},
	} {
		t.Run(fmt.Sprintf("v%d/%s=%d/type%d", c.v, c.update.Feature, c.update.MaxVersionLevel, c.update.UpgradeType), func(t *testing.T) {
			resp, err, msg := updateFeatures(t, addr, c.v, true, c.update)
			if c.wantMsg == "" {
				if err != nil || msg != "" {
					t.Fatalf("refused: %v %q", err, msg)
				}
				if wantResults := map[bool]int{true: 1, false: 0}[c.v < 2]; len(resp.Results) != wantResults {
					t.Errorf("%d results at v%d, want %d", len(resp.Results), c.v, wantResults)
				}
				return
			}
			if err != kerr.InvalidUpdateVersion || msg != prefix+c.wantMsg {
				t.Errorf("got %v %q\nwant INVALID_UPDATE_VERSION %q", err, msg, prefix+c.wantMsg)
			}
			if len(resp.Results) != 0 {
				t.Errorf("refused update has %d per-feature results; Kafka sends none", len(resp.Results))
			}
		})
	}
	if _, f, e := apiVersionFeatures(t, addr); !maps.Equal(f, wantFinal) || e != epoch {
		t.Fatalf("validate_only changed the finalized features to %v epoch %d", f, e)
	}

	// A real downgrade: transaction.version 0 leaves the finalized list, as
	// in Kafka, and a refused update in the same request applies nothing.
	if _, err, msg := updateFeatures(t, addr, 1, false, featureUpdate("transaction.version", 0, 2), featureUpdate("nope", 1, 1)); err != kerr.InvalidUpdateVersion {
		t.Fatalf("update naming an unknown feature: %v %q", err, msg)
	}
	if _, err, msg := updateFeatures(t, addr, 1, false, featureUpdate("transaction.version", 0, 2)); err != nil {
		t.Fatalf("downgrade: %v %q", err, msg)
	}
	_, f, e2 := apiVersionFeatures(t, addr)
	wantDown := map[string]int16{"metadata.version": 27, "group.version": 1, "share.version": 1, "streams.version": 1}
	if !maps.Equal(f, wantDown) || e2 <= epoch {
		t.Fatalf("after the downgrade: %v epoch %d (was %d), want %v and a larger epoch", f, e2, epoch, wantDown)
	}

	b.Close()
	b = startBroker(t, nil, b.dir)
	_, f, e3 := apiVersionFeatures(t, b.Addr())
	if !maps.Equal(f, wantDown) || e3 != e2 {
		t.Fatalf("after a restart: %v epoch %d, want %v epoch %d", f, e3, wantDown, e2)
	}
	if _, err, msg := updateFeatures(t, b.Addr(), 1, false, featureUpdate("transaction.version", 2, 1)); err != nil {
		t.Fatalf("upgrade: %v %q", err, msg)
	}
	if _, f, _ := apiVersionFeatures(t, b.Addr()); f["transaction.version"] != 2 {
		t.Fatalf("after the upgrade: %v", slices.Sorted(maps.Keys(f)))
	}

	// group.version 0 turns the KIP-848 consumer protocol off, as in Kafka
	// (KafkaApis.isConsumerGroupProtocolEnabled): its APIs answer
	// UNSUPPORTED_VERSION until the level is back at 1.
	heartbeat := func() int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberEpoch, req.RebalanceTimeoutMillis = "g848", 0, 30000
		req.MemberID, req.SubscribedTopicNames = "AAAAAAAAAAAAAAAAAAAAAA", []string{"t"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp, err := req.RequestWith(testContext(t), newClient(t, b.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if _, err, msg := updateFeatures(t, b.Addr(), 1, false, featureUpdate("group.version", 0, 2)); err != nil {
		t.Fatalf("group.version downgrade: %v %q", err, msg)
	}
	if code := heartbeat(); code != kerr.UnsupportedVersion.Code {
		t.Errorf("ConsumerGroupHeartbeat at group.version 0: %v, want UNSUPPORTED_VERSION", kerr.ErrorForCode(code))
	}
	if _, err, msg := updateFeatures(t, b.Addr(), 1, false, featureUpdate("group.version", 1, 1)); err != nil {
		t.Fatalf("group.version upgrade: %v %q", err, msg)
	}
	if code := heartbeat(); code != 0 {
		t.Errorf("ConsumerGroupHeartbeat at group.version 1: %v", kerr.ErrorForCode(code))
	}
}
