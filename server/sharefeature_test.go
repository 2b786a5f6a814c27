package server

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skiffmq/skiff/storage"
)

// TestShareVersionGatesShareGroupAPIs: share.version is supported 0-1 and
// finalized 1, as Kafka 4.2; downgraded to 0 every share group API answers
// UNSUPPORTED_VERSION (Kafka's KafkaApis.isShareGroupProtocolEnabled) while
// ApiVersions still lists them; the level survives a restart and an
// upgrade to 1 enables share groups again.
func TestShareVersionGatesShareGroupAPIs(t *testing.T) {
	fsys := storage.NewMemFS()
	start := func() (*Server, *kgo.Client) { return startOnFS(t, fsys) }
	ctx := context.Background()
	setLevel := func(cl *kgo.Client, level int16, upgradeType int8) {
		t.Helper()
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.Version = 1
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel, u.UpgradeType = "share.version", level, upgradeType
		req.FeatureUpdates = append(req.FeatureUpdates, u)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			t.Fatalf("UpdateFeatures share.version=%d: %v %v", level, err, resp.ErrorMessage)
		}
	}
	heartbeat := func(cl *kgo.Client) int16 {
		t.Helper()
		req := kmsg.NewPtrShareGroupHeartbeatRequest()
		req.GroupID, req.MemberID, req.SubscribedTopicNames = "g", "AAAAAAAAAAAAAAAAAAAAAA", []string{"t"}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}

	srv, cl := start()
	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var supported bool
	for _, f := range av.SupportedFeatures {
		supported = supported || (f.Name == "share.version" && f.MinVersion == 0 && f.MaxVersion == 1)
	}
	if !supported {
		t.Errorf("ApiVersions supported features %+v lack share.version 0-1", av.SupportedFeatures)
	}
	if l := finalizedLevel(t, cl, "share.version"); l != 1 {
		t.Fatalf("share.version finalized at %d, want 1", l)
	}
	if code := heartbeat(cl); code != 0 {
		t.Fatalf("ShareGroupHeartbeat with share.version 1: %v", kerr.ErrorForCode(code))
	}

	setLevel(cl, 0, 2) // safe downgrade
	if l := finalizedLevel(t, cl, "share.version"); l != 0 {
		t.Fatalf("share.version after the downgrade: %d, want 0", l)
	}
	unsupported := kerr.UnsupportedVersion.Code
	checks := []struct {
		name string
		req  kmsg.Request
		code func(kmsg.Response) int16
	}{
		{"ShareGroupHeartbeat", &kmsg.ShareGroupHeartbeatRequest{GroupID: "g", MemberID: "AAAAAAAAAAAAAAAAAAAAAA", MemberEpoch: 1},
			func(r kmsg.Response) int16 { return r.(*kmsg.ShareGroupHeartbeatResponse).ErrorCode }},
		{"ShareGroupDescribe", &kmsg.ShareGroupDescribeRequest{GroupIDs: []string{"g"}},
			func(r kmsg.Response) int16 { return r.(*kmsg.ShareGroupDescribeResponse).Groups[0].ErrorCode }},
		{"ShareFetch", &kmsg.ShareFetchRequest{GroupID: kmsg.StringPtr("g"), MemberID: kmsg.StringPtr("AAAAAAAAAAAAAAAAAAAAAA")},
			func(r kmsg.Response) int16 { return r.(*kmsg.ShareFetchResponse).ErrorCode }},
		{"ShareAcknowledge", &kmsg.ShareAcknowledgeRequest{GroupID: kmsg.StringPtr("g"), MemberID: kmsg.StringPtr("AAAAAAAAAAAAAAAAAAAAAA"), ShareSessionEpoch: 1},
			func(r kmsg.Response) int16 { return r.(*kmsg.ShareAcknowledgeResponse).ErrorCode }},
		{"DescribeShareGroupOffsets", &kmsg.DescribeShareGroupOffsetsRequest{Groups: []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: "g"}}},
			func(r kmsg.Response) int16 { return r.(*kmsg.DescribeShareGroupOffsetsResponse).Groups[0].ErrorCode }},
		{"AlterShareGroupOffsets", &kmsg.AlterShareGroupOffsetsRequest{GroupID: "g"},
			func(r kmsg.Response) int16 { return r.(*kmsg.AlterShareGroupOffsetsResponse).ErrorCode }},
		{"DeleteShareGroupOffsets", &kmsg.DeleteShareGroupOffsetsRequest{GroupID: "g"},
			func(r kmsg.Response) int16 { return r.(*kmsg.DeleteShareGroupOffsetsResponse).ErrorCode }},
	}
	for _, c := range checks {
		resp, err := cl.Request(ctx, c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := c.code(resp); got != unsupported {
			t.Errorf("%s with share.version 0: %v, want UNSUPPORTED_VERSION", c.name, kerr.ErrorForCode(got))
		}
	}
	av, err = kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, k := range av.ApiKeys {
		listed = listed || (k.ApiKey == kmsg.ShareFetch.Int16() && k.MaxVersion == 2)
	}
	if !listed {
		t.Error("ShareFetch left ApiVersions with share.version 0; Kafka keeps listing it")
	}
	cl.Close()
	srv.Close()

	srv, cl = start()
	defer srv.Close()
	defer cl.Close()
	if l := finalizedLevel(t, cl, "share.version"); l != 0 {
		t.Fatalf("share.version after a restart: %d, want 0", l)
	}
	if code := heartbeat(cl); code != unsupported {
		t.Errorf("ShareGroupHeartbeat after a restart with share.version 0: %v", kerr.ErrorForCode(code))
	}
	setLevel(cl, 1, 1)
	if code := heartbeat(cl); code != 0 {
		t.Errorf("ShareGroupHeartbeat after the upgrade to share.version 1: %v", kerr.ErrorForCode(code))
	}
}
