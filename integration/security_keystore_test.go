package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// keytool runs the JDK's keytool (beside the java the JVM tests use) and
// returns its standard output.
func keytool(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := filepath.Join(filepath.Dir(javaBin(t)), "keytool")
	if !fileExists(bin) {
		var err error
		if bin, err = exec.LookPath("keytool"); err != nil {
			t.Fatalf("keytool not found: %v", err)
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("keytool %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// keytoolKeystore makes a keystore of storeType holding one self-signed
// key entry for localhost/127.0.0.1 and returns its certificate.
func keytoolKeystore(t *testing.T, path, storeType, storePass, keyPass string, keyAlg ...string) *x509.Certificate {
	t.Helper()
	args := append([]string{"-genkeypair", "-alias", "server", "-dname", "CN=localhost",
		"-ext", "SAN=dns:localhost,ip:127.0.0.1", "-validity", "2",
		"-storetype", storeType, "-keystore", path, "-storepass", storePass, "-keypass", keyPass}, keyAlg...)
	keytool(t, args...)
	der := keytool(t, "-exportcert", "-alias", "server", "-storetype", storeType, "-keystore", path, "-storepass", storePass)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("keytool -exportcert: %v", err)
	}
	return cert
}

// TestTLSJavaKeystoresFromKeytool: a broker's SSL listener serves the key
// of a JKS and of a PKCS12 keystore made by the JDK's keytool (RSA and EC
// keys; the JKS key under its own password), requires client certificates
// that chain to the CA of a keytool-made truststore, and picks up a
// rewritten keystore without a restart. A franz-go client produces and
// consumes through it.
func TestTLSJavaKeystoresFromKeytool(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the JDK's keytool")
	}
	for _, tc := range []struct {
		storeType, keyPass string
		keyAlg             []string
	}{
		{storeType: "JKS", keyPass: "key-secret", keyAlg: []string{"-keyalg", "RSA", "-keysize", "2048"}},
		{storeType: "PKCS12", keyPass: "store-secret", keyAlg: []string{"-keyalg", "EC", "-groupname", "secp256r1"}},
	} {
		t.Run(tc.storeType, func(t *testing.T) {
			p := newTestPKI(t)
			ks := filepath.Join(p.dir, "server."+tc.storeType)
			first := keytoolKeystore(t, ks, tc.storeType, "store-secret", tc.keyPass, tc.keyAlg...)
			trust := filepath.Join(p.dir, "trust."+tc.storeType)
			keytool(t, "-importcert", "-noprompt", "-alias", "ca", "-file", p.caFile,
				"-storetype", tc.storeType, "-keystore", trust, "-storepass", "trust-secret")

			settings := map[string]string{
				"listeners":               "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
				"ssl.keystore.type":       tc.storeType,
				"ssl.keystore.location":   ks,
				"ssl.keystore.password":   "store-secret",
				"ssl.truststore.type":     tc.storeType,
				"ssl.truststore.location": trust,
				"ssl.truststore.password": "trust-secret",
				"ssl.client.auth":         "required",
			}
			if tc.keyPass != "store-secret" {
				settings["ssl.key.password"] = tc.keyPass
			}
			b := startBroker(t, settings)
			addr := b.ListenerAddr("SSL")
			topic := "keystore-" + tc.storeType
			createTopic(t, newAdmin(t, b.ListenerAddr("PLAINTEXT")), topic, 1, nil)

			clientTLS := p.clientTLS(t, true)
			clientTLS.RootCAs = x509.NewCertPool()
			clientTLS.RootCAs.AddCert(first)
			cl := authClient(t, addr, nil, clientTLS)
			if err := roundTripRecord(t, cl, topic, "over "+tc.storeType); err != nil {
				t.Fatalf("produce and consume over the %s-configured listener: %v", tc.storeType, err)
			}

			// A client certificate that does not chain to the truststore's
			// CA is refused (under TLS 1.3 the client learns it at its
			// first read).
			badTLS := newTestPKI(t).clientTLS(t, true)
			badTLS.RootCAs = clientTLS.RootCAs
			if c, err := tls.Dial("tcp", addr, badTLS); err == nil {
				defer c.Close()
				if served(c, 30*time.Second) {
					t.Fatal("a client certificate from a CA not in the truststore was accepted")
				}
			}

			// Rotation: keytool writes a new keystore that replaces the
			// old file; new connections get the new certificate.
			next := filepath.Join(p.dir, "next."+tc.storeType)
			rotated := keytoolKeystore(t, next, tc.storeType, "store-secret", tc.keyPass, tc.keyAlg...)
			if err := os.Rename(next, ks); err != nil {
				t.Fatal(err)
			}
			eventually(t, 15*time.Second, "the rotated certificate to be served", func() bool {
				cfg := p.clientTLS(t, true)
				cfg.InsecureSkipVerify = true // only reading what is served
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					return false
				}
				defer c.Close()
				return bytes.Equal(c.ConnectionState().PeerCertificates[0].Raw, rotated.Raw)
			})
		})
	}
}
