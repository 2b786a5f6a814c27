package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSSLPrincipalFromClientCertificate: handlers see the principal that
// ssl.principal.mapping.rules make of the client certificate's subject,
// User:ANONYMOUS without a certificate (ssl.client.auth=requested), and a
// certificate no rule matches is refused.
func TestSSLPrincipalFromClientCertificate(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(subject pkix.Name, serial int64) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subject, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	server := issue(pkix.Name{CommonName: "broker"}, 2)
	kder, _ := x509.MarshalPKCS8PrivateKey(server.PrivateKey)
	keystore := filepath.Join(dir, "server.pem")
	os.WriteFile(keystore, append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate[0]})...), 0o600)
	truststore := filepath.Join(dir, "ca.pem")
	os.WriteFile(truststore, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)

	seen := make(chan string, 10)
	const key = kmsg.DescribeDelegationToken // an API Skiff does not serve
	register(key, 0, 3, func(_ *Server, r *request) (kmsg.Response, error) {
		seen <- r.auth.principal
		return r.kreq.ResponseKind(), nil
	})
	t.Cleanup(func() { delete(apis, int16(key)) })

	srv, err := New(Config{DataDir: dir, Logger: zerolog.New(io.Discard), Settings: map[string]string{
		"listeners":                   "SSL://127.0.0.1:0",
		"ssl.keystore.location":       keystore,
		"ssl.truststore.location":     truststore,
		"ssl.client.auth":             "requested",
		"ssl.principal.mapping.rules": `RULE:^CN=([^,]*),OU=eng,.*$/$1/L, RULE:^CN=([^,]*),OU=ops,.*$/ops-$1/`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	principalOf := func(certs ...tls.Certificate) (string, error) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()), kgo.DialTLSConfig(&tls.Config{RootCAs: pool, Certificates: certs}),
			kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := kmsg.NewPtrDescribeDelegationTokenRequest().RequestWith(ctx, cl); err != nil {
			return "", err
		}
		return <-seen, nil
	}
	for _, tc := range []struct {
		subject pkix.Name
		want    string
	}{
		{pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"Acme"}}, "User:alice"},
		{pkix.Name{CommonName: "Bob", OrganizationalUnit: []string{"ops"}, Organization: []string{"Acme"}}, "User:ops-Bob"},
	} {
		if got, err := principalOf(issue(tc.subject, 3)); err != nil || got != tc.want {
			t.Errorf("%v: principal %q, %v; want %q", tc.subject, got, err, tc.want)
		}
	}
	if got, err := principalOf(); err != nil || got != "User:ANONYMOUS" {
		t.Errorf("no certificate: principal %q, %v; want User:ANONYMOUS", got, err)
	}
	if got, err := principalOf(issue(pkix.Name{CommonName: "mallory", OrganizationalUnit: []string{"sales"}, Organization: []string{"Acme"}}, 4)); err == nil {
		t.Errorf("a certificate no rule matches was served as %q", got)
	}
}
