package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJavaClientSASLSSL runs Apache Kafka's own console producer and
// consumer (kafka-clients 4.1, from integration/jvm/kafka) over SASL_SSL
// with SCRAM-SHA-512 and with OAUTHBEARER (the client's unsecured token),
// and checks that a wrong password is refused with Kafka's message.
func TestJavaClientSASLSSL(t *testing.T) {
	cp := mavenClasspath(t, "jvm/kafka")
	p := newTestPKI(t)
	b := startBroker(t, securitySettings(p))
	adm := newAdmin(t, b.ListenerAddr("PLAINTEXT"))
	addScramUser(t, adm, "bob", "bob-secret")
	addr := b.ListenerAddr("SASL_SSL")
	tlsProps := "security.protocol=SASL_SSL\nssl.truststore.type=PEM\nssl.truststore.location=" + p.caFile + "\n"
	java := func(t *testing.T, stdin, props string, args ...string) (string, string, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "client.properties")
		if err := os.WriteFile(path, []byte(tlsProps+props), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		for i, a := range args {
			if a == "PROPS" {
				args[i] = path
			}
		}
		cmd := exec.CommandContext(ctx, javaBin(t), append([]string{"-cp", cp}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	client := func(t *testing.T, topic, props, mode string) string {
		t.Helper()
		out, errOut, err := java(t, "", props, "clients/SecurityClient.java", addr, topic, "PROPS", mode)
		if err != nil {
			t.Fatalf("SecurityClient %s: %v\n%s\n%s", mode, err, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	scramProps := func(password string) string {
		return "sasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"" + password + "\";\n"
	}
	for _, tc := range []struct{ name, props string }{
		{"SCRAM-SHA-512", scramProps("bob-secret")},
		{"OAUTHBEARER", "sasl.mechanism=OAUTHBEARER\nsasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"carol\";\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "java-sec-" + strings.ToLower(tc.name)
			createTopic(t, adm, topic, 1, nil)
			if out := client(t, topic, tc.props, "roundtrip"); out != "consumed a,b,c" {
				t.Fatalf("got %q", out)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		createTopic(t, adm, "java-sec-refused", 1, nil)
		out := client(t, "java-sec-refused", scramProps("nope"), "expect-auth-failure")
		if out != "auth-failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512" {
			t.Fatalf("got %q", out)
		}
		if off := endOffset(t, adm, "java-sec-refused", 0); off != 0 {
			t.Fatalf("end offset %d after a refused producer", off)
		}
	})
}
