package server

import (
	"context"
	"testing"

	"github.com/skiffmq/skiff/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// finalizedLevel asks ApiVersions for a feature's finalized level (0 if
// not finalized).
func finalizedLevel(t *testing.T, cl *kgo.Client, name string) int16 {
	t.Helper()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range resp.FinalizedFeatures {
		if f.Name == name {
			return f.MaxVersionLevel
		}
	}
	return 0
}

// TestUpdateFeaturesOnFullDisk: a feature change whose meta.json write
// fails answers KAFKA_STORAGE_ERROR and changes nothing (the level is
// published only once saved); once space is freed the change goes
// through and survives a restart.
func TestUpdateFeaturesOnFullDisk(t *testing.T) {
	fsys := storage.NewMemFS()
	start := func() (*Server, *kgo.Client) { return startOnFS(t, fsys) }
	downgrade := func(cl *kgo.Client) int16 {
		t.Helper()
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.Version = 1
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel, u.UpgradeType = "transaction.version", 1, 2
		req.FeatureUpdates = append(req.FeatureUpdates, u)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}

	srv, cl := start()
	fsys.SetSpace(fsys.Used())
	if code := downgrade(cl); code != kerr.KafkaStorageError.Code {
		t.Errorf("UpdateFeatures on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	if l := finalizedLevel(t, cl, "transaction.version"); l != 2 {
		t.Errorf("after a failed save transaction.version = %d, want 2", l)
	}
	fsys.SetSpace(-1)
	if code := downgrade(cl); code != 0 {
		t.Fatalf("UpdateFeatures after space was freed: %v", kerr.ErrorForCode(code))
	}
	if l := finalizedLevel(t, cl, "transaction.version"); l != 1 {
		t.Errorf("after the update transaction.version = %d, want 1", l)
	}
	cl.Close()
	srv.Close()

	srv, cl = start()
	defer srv.Close()
	defer cl.Close()
	if l := finalizedLevel(t, cl, "transaction.version"); l != 1 {
		t.Errorf("after a restart transaction.version = %d, want 1", l)
	}
}

// startOnFS starts a server with its data in /data on fsys (a MemFS that
// outlives the server, for restarts) and a client of it; the caller closes
// both.
func startOnFS(t *testing.T, fsys storage.FS) (*Server, *kgo.Client) {
	t.Helper()
	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: "/data", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return srv, cl
}
