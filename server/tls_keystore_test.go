package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// storeTestPKI is a CA and a server certificate signed by it.
type storeTestPKI struct {
	ca      *x509.Certificate
	caKey   crypto.Signer
	leaf    *x509.Certificate
	leafKey crypto.Signer
	pool    *x509.CertPool
}

func newStoreTestPKI(t *testing.T, leafKey crypto.Signer) *storeTestPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "store test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &storeTestPKI{ca: ca, caKey: caKey, leaf: leaf, leafKey: leafKey, pool: pool}
}

func (p *storeTestPKI) jks(t *testing.T, storePass, keyPass string, extraKeyEntry bool) []byte {
	t.Helper()
	ks := keystore.New()
	kder, _ := x509.MarshalPKCS8PrivateKey(p.leafKey)
	entry := keystore.PrivateKeyEntry{CreationTime: time.Now(), PrivateKey: kder, CertificateChain: []keystore.Certificate{
		{Type: "X.509", Content: p.leaf.Raw}, {Type: "X.509", Content: p.ca.Raw}}}
	if err := ks.SetPrivateKeyEntry("server", entry, []byte(keyPass)); err != nil {
		t.Fatal(err)
	}
	if extraKeyEntry {
		if err := ks.SetPrivateKeyEntry("other", entry, []byte(keyPass)); err != nil {
			t.Fatal(err)
		}
	}
	return storeJKSBytes(t, ks, storePass)
}

func (p *storeTestPKI) jksTrust(t *testing.T, pass string) []byte {
	t.Helper()
	ks := keystore.New()
	if err := ks.SetTrustedCertificateEntry("ca", keystore.TrustedCertificateEntry{CreationTime: time.Now(),
		Certificate: keystore.Certificate{Type: "X.509", Content: p.ca.Raw}}); err != nil {
		t.Fatal(err)
	}
	return storeJKSBytes(t, ks, pass)
}

func storeJKSBytes(t *testing.T, ks keystore.KeyStore, pass string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(pass)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestJavaKeystoresFromLibraries: JKS and PKCS12 key and trust stores, as
// keystore-go and go-pkcs12 write them (modern and legacy PKCS12
// algorithms, RSA and ECDSA keys), serve a TLS handshake that a client
// trusting the CA completes and that requires the client certificate the
// truststore's CA signed; and the mistakes people make are refused with
// the setting to fix.
func TestJavaKeystoresFromLibraries(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ec, rs := newStoreTestPKI(t, ecKey), newStoreTestPKI(t, rsaKey)
	p12 := func(p *storeTestPKI, enc *pkcs12.Encoder, pass string) []byte {
		// The CA first: the loader must find the leaf by its key.
		data, err := enc.Encode(p.leafKey, p.ca, []*x509.Certificate{p.leaf}, pass)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	p12Trust := func(p *storeTestPKI, enc *pkcs12.Encoder, pass string) []byte {
		data, err := enc.EncodeTrustStore([]*x509.Certificate{p.ca}, pass)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	ecJKS := write("ec.jks", ec.jks(t, "storepass", "keypass", false))
	rsaJKS := write("rsa.jks", rs.jks(t, "storepass", "storepass", false))
	twoKeys := write("two.jks", ec.jks(t, "storepass", "storepass", true))
	ecP12 := write("ec.p12", p12(ec, pkcs12.Modern, "storepass"))
	rsaP12Legacy := write("rsa-legacy.p12", p12(rs, pkcs12.LegacyDES, "storepass"))
	ecTrustJKS := write("ec-trust.jks", ec.jksTrust(t, "trustpass"))
	rsaTrustP12 := write("rsa-trust.p12", p12Trust(rs, pkcs12.Modern, "trustpass"))
	ecTrustP12NoPass := write("ec-trust-nopass.p12", p12Trust(ec, pkcs12.Passwordless, ""))
	jceks := write("store.jceks", []byte{0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2})

	for _, tc := range []struct {
		name     string
		pki      *storeTestPKI
		settings map[string]string
		wantErr  string
	}{
		{name: "JKS key password", pki: ec, settings: map[string]string{"ssl.keystore.type": "JKS", "ssl.keystore.location": ecJKS,
			"ssl.keystore.password": "storepass", "ssl.key.password": "keypass",
			"ssl.truststore.type": "JKS", "ssl.truststore.location": ecTrustJKS, "ssl.truststore.password": "trustpass"}},
		{name: "JKS RSA key under the store password", pki: rs, settings: map[string]string{"ssl.keystore.type": "JKS", "ssl.keystore.location": rsaJKS,
			"ssl.keystore.password": "storepass", "ssl.truststore.type": "PKCS12", "ssl.truststore.location": rsaTrustP12, "ssl.truststore.password": "trustpass"}},
		{name: "PKCS12 modern", pki: ec, settings: map[string]string{"ssl.keystore.type": "PKCS12", "ssl.keystore.location": ecP12,
			"ssl.keystore.password": "storepass", "ssl.truststore.type": "PKCS12", "ssl.truststore.location": ecTrustP12NoPass}},
		{name: "PKCS12 legacy, type not set", pki: rs, settings: map[string]string{"ssl.keystore.location": rsaP12Legacy,
			"ssl.keystore.password": "storepass", "ssl.truststore.location": rsaTrustP12, "ssl.truststore.password": "trustpass"}},
		{name: "PKCS12 file declared JKS", pki: ec, settings: map[string]string{"ssl.keystore.type": "JKS", "ssl.keystore.location": ecP12,
			"ssl.keystore.password": "storepass", "ssl.truststore.location": ecTrustJKS, "ssl.truststore.password": "trustpass"}},
		{name: "wrong store password", settings: map[string]string{"ssl.keystore.location": ecJKS, "ssl.keystore.password": "nope", "ssl.key.password": "keypass"},
			wantErr: "wrong password"},
		{name: "wrong key password", settings: map[string]string{"ssl.keystore.location": ecJKS, "ssl.keystore.password": "storepass"},
			wantErr: "wrong ssl.key.password"},
		{name: "no store password", settings: map[string]string{"ssl.keystore.location": ecP12}, wantErr: "ssl.keystore.password"},
		{name: "wrong PKCS12 password", settings: map[string]string{"ssl.keystore.location": ecP12, "ssl.keystore.password": "nope"},
			wantErr: "wrong ssl.keystore.password"},
		{name: "two key entries", settings: map[string]string{"ssl.keystore.location": twoKeys, "ssl.keystore.password": "storepass"},
			wantErr: "exactly one key entry"},
		{name: "JCEKS", settings: map[string]string{"ssl.keystore.location": jceks, "ssl.keystore.password": "storepass"},
			wantErr: "JCEKS stores are not supported"},
		{name: "JKS truststore without password", settings: map[string]string{"ssl.keystore.location": ecP12, "ssl.keystore.password": "storepass",
			"ssl.truststore.location": ecTrustJKS, "ssl.client.auth": "required"}, wantErr: "ssl.truststore.location"},
		{name: "keystore as truststore", settings: map[string]string{"ssl.keystore.location": ecP12, "ssl.keystore.password": "storepass",
			"ssl.truststore.location": ecP12, "ssl.truststore.password": "storepass"}, wantErr: "ssl.truststore.location"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := map[string]string{"listeners": "SSL://127.0.0.1:0"}
			for k, v := range tc.settings {
				settings[k] = v
			}
			if tc.wantErr == "" {
				settings["ssl.client.auth"] = "required"
			}
			cfg := Config{DataDir: dir, Settings: settings}
			err := cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stranger := rs
			if tc.pki == rs {
				stranger = ec
			}
			handshakeWithStores(t, cfg.listeners[0].security.tls.config(), tc.pki, stranger)
		})
	}
}

// handshakeWithStores runs TLS handshakes over pipes: the client checks
// the server's chain against p's CA and presents a certificate signed by
// p's CA, which the server's truststore must accept, then one signed by
// another CA, which it must refuse.
func handshakeWithStores(t *testing.T, srvCfg *tls.Config, p, stranger *storeTestPKI) {
	t.Helper()
	if err := handshake(t, srvCfg, p, p.clientCert(t)); err != nil {
		t.Fatalf("server handshake with a client certificate its truststore's CA signed: %v", err)
	}
	if err := handshake(t, srvCfg, p, stranger.clientCert(t)); err == nil {
		t.Fatal("server accepted a client certificate from a CA not in its truststore")
	}
}

func (p *storeTestPKI) clientCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// handshake returns the server side's handshake error; the client's own
// check of the served certificate must pass.
func handshake(t *testing.T, srvCfg *tls.Config, p *storeTestPKI, cert tls.Certificate) error {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		srv := tls.Server(a, srvCfg)
		err := srv.HandshakeContext(ctx)
		if err == nil {
			// TLS 1.3 checks the client certificate after the client's
			// handshake ends: read so that its verdict arrives.
			srv.Write([]byte{1})
		}
		errc <- err
		a.Close()
	}()
	cl := tls.Client(b, &tls.Config{RootCAs: p.pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}})
	if err := cl.HandshakeContext(ctx); err == nil {
		if got := cl.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 77 {
			t.Fatalf("served certificate serial %d, want 77", got)
		}
		cl.Read(make([]byte, 1))
	}
	return <-errc
}
