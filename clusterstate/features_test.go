package clusterstate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFeaturesOldMetaJSONLoadsWithInitialLevels: a meta.json written before
// feature levels has no "features" key; it must still load, with the
// levels a new cluster finalizes, and keep its topics.
func TestFeaturesOldMetaJSONLoadsWithInitialLevels(t *testing.T) {
	dir := t.TempDir()
	old := `{"cluster_id":"abc","topics":[{"name":"t","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1}]}`
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	f := open(t, dir)
	if _, ok := f.state.Topic("t"); !ok || f.state.ClusterID() != "abc" {
		t.Fatalf("old meta.json lost its content: cluster %q", f.state.ClusterID())
	}
	levels, epoch := f.state.Features()
	for _, sp := range SupportedFeatures {
		if levels[sp.Name] != sp.Initial {
			t.Errorf("%s = %d, want the initial %d", sp.Name, levels[sp.Name], sp.Initial)
		}
	}
	if epoch != 1 {
		t.Errorf("epoch = %d, want 1", epoch)
	}
	if img := readImage(t, dir); img.Features == nil || img.Features.Levels["transaction.version"] != 2 {
		t.Errorf("the rewritten meta.json has no feature levels: %+v", img.Features)
	}
}

// TestFeaturesUpdatePersistsAndBumpsEpoch: a change is saved once, moves
// the epoch on and survives a restart, as a downgrade to 0 does too.
func TestFeaturesUpdatePersistsAndBumpsEpoch(t *testing.T) {
	f := open(t, t.TempDir())
	if err := f.state.UpdateFeatures([]FeatureUpdate{{Name: "transaction.version", Level: 0, UpgradeType: UpgradeTypeSafeDowngrade}}, true); err != nil {
		t.Fatal(err)
	}
	if l := f.state.FeatureLevel("transaction.version"); l != 2 {
		t.Fatalf("validate-only changed the level to %d", l)
	}
	writes := f.backend.Writes()
	if err := f.state.UpdateFeatures([]FeatureUpdate{{Name: "transaction.version", Level: 0, UpgradeType: UpgradeTypeSafeDowngrade}}, false); err != nil {
		t.Fatal(err)
	}
	if got := f.backend.Writes() - writes; got != 1 {
		t.Errorf("update saved %d times, want 1", got)
	}
	if _, epoch := f.state.Features(); epoch != 2 {
		t.Errorf("epoch = %d after one change, want 2", epoch)
	}
	// Setting the level it already has writes nothing and keeps the epoch.
	writes = f.backend.Writes()
	if err := f.state.UpdateFeatures([]FeatureUpdate{{Name: "transaction.version", Level: 0, UpgradeType: UpgradeTypeSafeDowngrade}}, false); err != nil {
		t.Fatal(err)
	}
	if f.backend.Writes() != writes {
		t.Error("a no-op update saved")
	}

	f = f.reopen(t)
	if l := f.state.FeatureLevel("transaction.version"); l != 0 {
		t.Errorf("after a restart transaction.version = %d, want the downgraded 0", l)
	}
	if _, epoch := f.state.Features(); epoch != 2 {
		t.Errorf("after a restart epoch = %d, want 2", epoch)
	}
	if l := f.state.FeatureLevel("group.version"); l != 1 {
		t.Errorf("group.version = %d, want the untouched 1", l)
	}
}

// TestFeaturesUpdateRefusedAllOrNothing: one bad update refuses the whole
// request with Kafka's message, and changes nothing.
func TestFeaturesUpdateRefusedAllOrNothing(t *testing.T) {
	f := open(t, t.TempDir())
	cases := []struct {
		u    FeatureUpdate
		want string
	}{
		{FeatureUpdate{Name: "nope", Level: 1, UpgradeType: UpgradeTypeUpgrade}, "Local controller 7 does not support this feature."},
		{FeatureUpdate{Name: "transaction.version", Level: 3, UpgradeType: UpgradeTypeUpgrade}, "Local controller 7 only supports versions 0-2"},
		{FeatureUpdate{Name: "transaction.version", Level: 1, UpgradeType: UpgradeTypeUpgrade}, "without setting the upgrade type"},
		{FeatureUpdate{Name: "transaction.version", Level: -1, UpgradeType: UpgradeTypeUnsafeDowngrade}, "cannot be less than 0"},
		{FeatureUpdate{Name: "transaction.version", Level: 1, UpgradeType: 4}, "does not support the given upgrade type"},
		{FeatureUpdate{Name: "metadata.version", Level: 26, UpgradeType: UpgradeTypeUnsafeDowngrade}, "only supports versions 27-27"},
	}
	for _, c := range cases {
		good := FeatureUpdate{Name: "group.version", Level: 0, UpgradeType: UpgradeTypeSafeDowngrade}
		err := f.state.UpdateFeatures([]FeatureUpdate{good, c.u}, false)
		var refused *FeatureUpdateError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), c.want) ||
			!strings.HasPrefix(err.Error(), "The update failed for all features since the following feature had an error: Invalid update version") {
			t.Errorf("%+v: err %v, want a refusal containing %q", c.u, err, c.want)
		}
	}
	if l := f.state.FeatureLevel("group.version"); l != 1 {
		t.Errorf("a refused request changed group.version to %d", l)
	}
}

// TestFeaturesFailedSaveChangesNothing: the levels are published only once
// saved.
func TestFeaturesFailedSaveChangesNothing(t *testing.T) {
	f := open(t, t.TempDir())
	f.backend.fail = true
	err := f.state.UpdateFeatures([]FeatureUpdate{{Name: "group.version", Level: 0, UpgradeType: UpgradeTypeSafeDowngrade}}, false)
	var refused *FeatureUpdateError
	if err == nil || errors.As(err, &refused) {
		t.Fatalf("err = %v, want the save's error", err)
	}
	if l, _ := f.state.Features(); l["group.version"] != 1 {
		t.Errorf("a failed save published group.version %d", l["group.version"])
	}
	f.backend.fail = false
	if err := f.state.UpdateFeatures([]FeatureUpdate{{Name: "group.version", Level: 0, UpgradeType: UpgradeTypeSafeDowngrade}}, false); err != nil {
		t.Fatal(err)
	}
	if _, epoch := f.state.Features(); epoch != 2 {
		t.Errorf("epoch = %d, want 2: the failed save must not have used one", epoch)
	}
}

// TestFeaturesImageWithoutFeaturesOmitsKey: an Image without levels
// encodes without the key, so the format is what older Skiffs wrote.
func TestFeaturesImageWithoutFeaturesOmitsKey(t *testing.T) {
	data, err := json.Marshal(Image{ClusterID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "features") {
		t.Errorf("an image without levels encodes %s", data)
	}
}
