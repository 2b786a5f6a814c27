package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// librdkafka clients (kcat, confluent-kafka) on each kind of secured
// listener, and refused with wrong credentials. They need the tools, so
// -short skips them.

// securedClientCases are the listener setups both librdkafka clients run
// through: librdkafka property sets, keyed by what they exercise.
func securedClientCases(b *broker, p *testPKI) []struct {
	name string
	conf map[string]string
	bad  map[string]string // the same with wrong credentials; nil: none
} {
	sslCA := map[string]string{"ssl.ca.location": p.caFile}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	scram := with(sslCA, "bootstrap.servers", b.ListenerAddr("SASL_SSL"), "security.protocol", "SASL_SSL",
		"sasl.mechanisms", "SCRAM-SHA-512", "sasl.username", "bob", "sasl.password", "bob-secret")
	plain := map[string]string{"bootstrap.servers": b.ListenerAddr("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
		"sasl.mechanisms": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret"}
	return []struct {
		name string
		conf map[string]string
		bad  map[string]string
	}{
		{"SASL_SSL SCRAM-SHA-512", scram, with(scram, "sasl.password", "wrong")},
		{"SSL client certificate", with(sslCA, "bootstrap.servers", b.ListenerAddr("SSL"), "security.protocol", "SSL",
			"ssl.certificate.location", p.clientCert, "ssl.key.location", p.clientKey), nil},
		{"SASL_PLAINTEXT PLAIN", plain, with(plain, "sasl.username", "mallory")},
	}
}

func TestKcatSecuredListeners(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kcat")
	}
	p := newTestPKI(t)
	b := startBroker(t, securitySettings(p))
	adm := newAdmin(t, b.ListenerAddr("PLAINTEXT"))
	addScramUser(t, adm, "bob", "bob-secret")
	for i, tc := range securedClientCases(b, p) {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("kcat-sec-%d", i)
			createTopic(t, adm, topic, 1, nil)
			args := func(conf map[string]string) []string {
				var out []string
				for k, v := range conf {
					if k == "bootstrap.servers" {
						out = append(out, "-b", v)
					} else {
						out = append(out, "-X", k+"="+v)
					}
				}
				return out
			}
			runKcat(t, "a\nb\nc\n", append(args(tc.conf), "-P", "-t", topic)...)
			out := runKcat(t, "", append(args(tc.conf), "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%s\n")...)
			if out != "a\nb\nc\n" {
				t.Fatalf("consumed %q, want a b c", out)
			}
			if tc.bad == nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, kcatPath(t), append(args(tc.bad), "-C", "-t", topic, "-o", "beginning", "-e", "-m", "10")...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil || stdout.Len() > 0 || !strings.Contains(stderr.String(), "Authentication failed") {
				t.Fatalf("kcat with bad credentials: %v, stdout %q, stderr %s", err, stdout.String(), stderr.String())
			}
		})
	}
}

func TestConfluentKafkaSecuredListeners(t *testing.T) {
	if testing.Short() {
		t.Skip("needs confluent-kafka")
	}
	ecoRequirePython(t, "confluent_kafka", "python3-confluent-kafka")
	p := newTestPKI(t)
	b := startBroker(t, securitySettings(p))
	adm := newAdmin(t, b.ListenerAddr("PLAINTEXT"))
	addScramUser(t, adm, "bob", "bob-secret")
	run := func(t *testing.T, topic string, conf map[string]string, extra ...string) map[string]any {
		t.Helper()
		js, _ := json.Marshal(conf)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{"clients/confluent_security.py", topic, string(js)}, extra...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("confluent_security.py %v: %v\n%s", extra, err, stderr.String())
		}
		var res map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("printed %q: %v", stdout.String(), err)
		}
		return res
	}
	for i, tc := range securedClientCases(b, p) {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("ck-sec-%d", i)
			createTopic(t, adm, topic, 1, nil)
			if res := run(t, topic, tc.conf); res["consumed"] != float64(10) {
				t.Fatalf("result %v", res)
			}
			if tc.bad != nil {
				res := run(t, topic, tc.bad, "expect-auth-failure")
				if msg, _ := res["auth_error"].(string); !strings.Contains(msg, "Authentication failed") {
					t.Fatalf("auth error %q lacks Kafka's message", msg)
				}
				if off := endOffset(t, adm, topic, 0); off != 10 {
					t.Fatalf("end offset %d after the refused producer, want 10", off)
				}
			}
		})
	}
}
