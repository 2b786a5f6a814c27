package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInvalidConfigExitsWithCode2(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	os.WriteFile(props, []byte("num.partitions=3\nno.such.setting=1\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown override", []string{"--data-dir", dir, "--override", "bogus.config=1"}, `unknown config "bogus.config"`},
		{"invalid value", []string{"--data-dir", dir, "--override", "num.partitions=zero"}, "num.partitions"},
		{"unknown in file", []string{"--data-dir", dir, "--config", props}, `unknown config "no.such.setting"`},
		{"missing file", []string{"--config", filepath.Join(dir, "absent")}, "reading config"},
		{"bad override syntax", []string{"--override", "novalue"}, "not key=value"},
		{"bad log level", []string{"--log-level", "loud"}, "log-level"},
		{"wildcard without advertise", []string{"--data-dir", dir, "--listen", "0.0.0.0:0"}, "advertised"},
		{"unknown flag", []string{"--frobnicate"}, "frobnicate"},
		{"unknown profile", []string{"--data-dir", dir, "--profile", "fast"}, `unknown profile "fast"`},
		{"scram user without password", []string{"--data-dir", dir, "--scram-user", "alice"}, "name:password"},
		{"scram user bad mechanism", []string{"--data-dir", dir, "--scram-user", "alice:pw:SCRAM-MD5"}, "unknown mechanism"},
		{"sasl listener without mechanisms", []string{"--data-dir", dir, "--listeners", "SASL_PLAINTEXT://127.0.0.1:0"}, "sasl.enabled.mechanisms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(tc.args, &stderr); code != exitConfig {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, exitConfig, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q does not mention %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestReadProperties(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.properties")
	os.WriteFile(path, []byte(`# comment
! another comment
num.partitions=3
log.retention.hours : 24
listeners PLAINTEXT://localhost:19092
log.dirs=/tmp/a,\
  /tmp/b
empty=
`), 0o644)
	got := map[string]string{}
	if err := readProperties(path, got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"num.partitions":      "3",
		"log.retention.hours": "24",
		"listeners":           "PLAINTEXT://localhost:19092",
		"log.dirs":            "/tmp/a,/tmp/b",
		"empty":               "",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
