package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSKeystoreSettings: Kafka's PEM keystore settings, inline and as a
// file, and the settings Skiff refuses with a message that says why.
func TestTLSKeystoreSettings(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	dir := t.TempDir()
	both := filepath.Join(dir, "server.pem")
	os.WriteFile(both, []byte(keyPEM+certPEM), 0o600)
	encrypted := filepath.Join(dir, "enc.pem")
	os.WriteFile(encrypted, []byte(certPEM+"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)

	for _, tc := range []struct {
		name     string
		settings map[string]string
		wantErr  string
	}{
		{"file", map[string]string{"ssl.keystore.location": both}, ""},
		{"inline", map[string]string{"ssl.keystore.type": "PEM", "ssl.keystore.certificate.chain": certPEM, "ssl.keystore.key": keyPEM}, ""},
		{"per listener", map[string]string{"listener.name.ssl.ssl.keystore.location": both, "listener.name.ssl.ssl.enabled.protocols": "TLSv1.3"}, ""},
		{"JKS type on a PEM file", map[string]string{"ssl.keystore.type": "JKS", "ssl.keystore.location": both}, "the file is PEM, not JKS"},
		{"unknown type", map[string]string{"ssl.keystore.type": "JCEKS", "ssl.keystore.location": both}, "must be one of PEM, JKS, PKCS12"},
		{"encrypted key", map[string]string{"ssl.keystore.location": encrypted}, "encrypted private keys are not supported"},
		{"no key", map[string]string{"ssl.keystore.certificate.chain": certPEM, "ssl.keystore.key": certPEM}, "no PEM private key"},
		{"TLS 1.1", map[string]string{"ssl.keystore.location": both, "ssl.enabled.protocols": "TLSv1.2,TLSv1.1"}, "only TLSv1.2 and TLSv1.3"},
		{"client auth without CAs", map[string]string{"ssl.keystore.location": both, "ssl.client.auth": "required"}, "ssl.truststore"},
		{"bad mapping rule", map[string]string{"ssl.keystore.location": both, "ssl.principal.mapping.rules": "RULE:oops"}, "ssl.principal.mapping.rules"},
		{"missing file", map[string]string{"ssl.keystore.location": filepath.Join(dir, "absent.pem")}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := map[string]string{"listeners": "SSL://127.0.0.1:0"}
			for k, v := range tc.settings {
				settings[k] = v
			}
			cfg := Config{DataDir: dir, Settings: settings}
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.listeners[0].security.tls == nil {
					t.Fatal("no TLS on an SSL listener")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}
