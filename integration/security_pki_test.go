package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a throwaway certificate authority with a server certificate
// for 127.0.0.1/localhost and a client certificate, written as PEM files
// the way Kafka's ssl.keystore.type=PEM settings take them.
type testPKI struct {
	dir        string
	ca         *x509.Certificate
	caKey      *ecdsa.PrivateKey
	caFile     string // CA certificate
	serverFile string // server key + chain (ssl.keystore.location)
	clientCert string // client certificate
	clientKey  string // client key
	pool       *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "skiff test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.caFile = p.write(t, "ca.pem", pemBlock("CERTIFICATE", der))
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)

	certPEM, keyPEM := p.issue(t, pkix.Name{CommonName: "localhost"}, 2, true)
	p.serverFile = p.write(t, "server.pem", append(keyPEM, certPEM...))
	certPEM, keyPEM = p.issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"Acme"}}, 3, false)
	p.clientCert = p.write(t, "client.pem", certPEM)
	p.clientKey = p.write(t, "client.key", keyPEM)
	return p
}

// issue signs a new leaf certificate; the returned PEM holds the leaf and
// the CA (a chain), and its private key.
func (p *testPKI) issue(t *testing.T, subject pkix.Name, serial int64, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = append(pemBlock("CERTIFICATE", der), pemBlock("CERTIFICATE", p.ca.Raw)...)
	return certPEM, pemBlock("PRIVATE KEY", kder)
}

func (p *testPKI) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientTLS is a client config that trusts the CA and, with cert, presents
// the client certificate.
func (p *testPKI) clientTLS(t *testing.T, cert bool) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.pool, ServerName: "localhost"}
	if cert {
		kp, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkixLocalhost() pkix.Name { return pkix.Name{CommonName: "localhost"} }
