package server

import (
	"testing"
	"time"

	"github.com/skiffmq/skiff/storage"
)

// Regression (Hardening finding 9): producer.id.expiration.ms was accepted
// and never reached the storage engine.
func TestStoreOptionsFromBrokerSettings(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]string
		want     storage.StoreOptions
	}{
		{nil, storage.StoreOptions{RecoveryPointInterval: time.Minute, ProducerIDExpiration: 24 * time.Hour, ProducerIDExpirationCheckInterval: 10 * time.Minute}},
		{map[string]string{
			"producer.id.expiration.ms":                "1234",
			"producer.id.expiration.check.interval.ms": "50",
			"log.flush.offset.checkpoint.interval.ms":  "0",
			"skiff.log.segment.files.max":              "300",
		}, storage.StoreOptions{RecoveryPointInterval: -1, ProducerIDExpiration: 1234 * time.Millisecond, ProducerIDExpirationCheckInterval: 50 * time.Millisecond, SegmentFiles: 300}},
	} {
		c := Config{DataDir: t.TempDir(), Settings: tc.settings}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.storeOptions(); got.Now != nil || got.RecoveryPointInterval != tc.want.RecoveryPointInterval ||
			got.ProducerIDExpiration != tc.want.ProducerIDExpiration || got.ProducerIDExpirationCheckInterval != tc.want.ProducerIDExpirationCheckInterval ||
			got.SegmentFiles != tc.want.SegmentFiles {
			t.Errorf("settings %v: store options %+v, want %+v", tc.settings, got, tc.want)
		}
	}
}

func TestSegmentFilesSettingRejectsNegative(t *testing.T) {
	for _, v := range []string{"-1", "many"} {
		c := Config{DataDir: t.TempDir(), Settings: map[string]string{"skiff.log.segment.files.max": v}}
		if err := c.Validate(); err == nil {
			t.Errorf("skiff.log.segment.files.max=%s accepted", v)
		}
	}
}
