package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// TLS listeners (SSL and SASL_SSL) with Kafka's keystore settings:
//
//   - ssl.keystore.location: the listener's key and certificate chain, in
//     a PEM file (the private key and the chain, leaf first), a JKS or a
//     PKCS12 keystore (tls_keystore.go) as ssl.keystore.type says, with
//     ssl.keystore.password and ssl.key.password for the Java stores; or,
//     for PEM (KIP-651), ssl.keystore.key and ssl.keystore.certificate.chain
//     holding the PEM text inline.
//   - ssl.truststore.location (PEM, JKS or PKCS12, ssl.truststore.type,
//     ssl.truststore.password) / ssl.truststore.certificates (inline PEM):
//     the CA certificates that client certificates must chain to.
//   - ssl.client.auth: required, requested or none.
//   - ssl.enabled.protocols: TLSv1.2 and/or TLSv1.3; older versions are
//     never offered.
//
// Encrypted PEM private keys are not supported (ssl.key.password applies
// to JKS keys only).
//
// Files are re-read when their modification time or size changes, checked
// at most once a second at a handshake, so rotated certificates take effect
// without a restart (Kafka needs an AlterConfigs of the listener's ssl
// configs for that). A file that fails to parse after a change is logged
// and the previous certificates stay in use.

// tlsSource builds the tls.Config of one listener.
type tlsSource struct {
	log        zerolog.Logger
	clientAuth tls.ClientAuthType
	minVersion uint16
	maxVersion uint16

	keystorePath, truststorePath string
	keystoreType, truststoreType string // as set; empty: decided by the content
	keystorePass, keyPass        string // ssl.keystore.password, ssl.key.password
	truststorePass               string
	inlineCert, inlineKey        string // ssl.keystore.certificate.chain / key
	inlineTrust                  string // ssl.truststore.certificates

	mu struct {
		sync.Mutex
		cfg       *tls.Config // what handshakes use
		checked   time.Time   // last time the files were looked at
		keyStamp  fileStamp
		trustStmp fileStamp
	}
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}
}

// tlsRecheck bounds how often a handshake looks at the key and trust files.
const tlsRecheck = time.Second

func newTLSSource(look securityLookup, log zerolog.Logger) (*tlsSource, error) {
	t := &tlsSource{log: log, minVersion: tls.VersionTLS12, maxVersion: tls.VersionTLS13}
	t.keystorePath, _ = look.get("ssl.keystore.location")
	t.inlineCert, _ = look.get("ssl.keystore.certificate.chain")
	t.inlineKey, _ = look.get("ssl.keystore.key")
	t.truststorePath, _ = look.get("ssl.truststore.location")
	t.inlineTrust, _ = look.get("ssl.truststore.certificates")
	t.keystoreType, _ = look.get("ssl.keystore.type")
	t.truststoreType, _ = look.get("ssl.truststore.type")
	t.keystorePass, _ = look.get("ssl.keystore.password")
	t.keyPass, _ = look.get("ssl.key.password")
	t.truststorePass, _ = look.get("ssl.truststore.password")
	for name, typ := range map[string]string{"ssl.keystore.type": t.keystoreType, "ssl.truststore.type": t.truststoreType} {
		if typ != "" && !slices.Contains(storeTypes, strings.ToUpper(typ)) {
			return nil, fmt.Errorf("%s %s is not supported; use PEM, JKS or PKCS12", name, typ)
		}
	}
	if t.keystorePath == "" && t.inlineCert != "" && t.keystoreType != "" && !strings.EqualFold(t.keystoreType, storePEM) {
		return nil, errors.New("ssl.keystore.certificate.chain and ssl.keystore.key need ssl.keystore.type=PEM")
	}
	if t.keystorePath == "" && (t.inlineCert == "" || t.inlineKey == "") {
		return nil, errors.New("a TLS listener needs ssl.keystore.location (a PEM, JKS or PKCS12 keystore) or ssl.keystore.certificate.chain and ssl.keystore.key")
	}
	switch auth, _ := look.get("ssl.client.auth"); strings.ToLower(auth) {
	case "required":
		t.clientAuth = tls.RequireAndVerifyClientCert
	case "requested":
		t.clientAuth = tls.VerifyClientCertIfGiven
	default:
		t.clientAuth = tls.NoClientCert
	}
	if protos, ok := look.get("ssl.enabled.protocols"); ok && protos != "" {
		t.minVersion, t.maxVersion = tls.VersionTLS13, tls.VersionTLS12
		for _, p := range strings.Split(protos, ",") {
			v := uint16(tls.VersionTLS12)
			if strings.TrimSpace(p) == "TLSv1.3" {
				v = tls.VersionTLS13
			}
			t.minVersion, t.maxVersion = min(t.minVersion, v), max(t.maxVersion, v)
		}
	}
	if t.clientAuth != tls.NoClientCert && t.truststorePath == "" && t.inlineTrust == "" {
		return nil, errors.New("ssl.client.auth needs CA certificates in ssl.truststore.location or ssl.truststore.certificates")
	}
	cfg, err := t.load()
	if err != nil {
		return nil, err
	}
	t.mu.cfg = cfg
	t.mu.checked = time.Now()
	t.mu.keyStamp, t.mu.trustStmp = stampOf(t.keystorePath), stampOf(t.truststorePath)
	return t, nil
}

// load reads the key, chain and CAs and builds the config handshakes use.
func (t *tlsSource) load() (*tls.Config, error) {
	cert, err := t.loadKeyStore()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   t.clientAuth,
		MinVersion:   t.minVersion,
		MaxVersion:   t.maxVersion,
	}
	if cfg.ClientCAs, err = t.loadTrustStore(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (t *tlsSource) loadKeyStore() (tls.Certificate, error) {
	if t.keystorePath == "" {
		return parseKeyPair([]byte(t.inlineCert), []byte(t.inlineKey))
	}
	data, err := os.ReadFile(t.keystorePath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ssl.keystore.location: %w", err)
	}
	format, err := storeFormat(t.keystoreType, data)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ssl.keystore.location %s: %w", t.keystorePath, err)
	}
	if format == storePEM {
		return parseKeyPair(data, data)
	}
	if t.keystorePass == "" {
		// Kafka's DefaultSslEngineFactory refuses this too.
		return tls.Certificate{}, errors.New("SSL key store is specified, but key store password is not specified (ssl.keystore.password)")
	}
	keyPass := t.keyPass
	if keyPass == "" {
		keyPass = t.keystorePass // as Kafka: the key is under the store password
	}
	cert, err := loadJavaKeyStore(format, data, t.keystorePass, keyPass)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ssl.keystore.location %s (%s): %w", t.keystorePath, format, err)
	}
	return cert, nil
}

// loadTrustStore returns the CAs client certificates must chain to, nil
// when none are configured.
func (t *tlsSource) loadTrustStore() (*x509.CertPool, error) {
	trust := []byte(t.inlineTrust)
	format := storePEM
	if t.truststorePath != "" {
		var err error
		if trust, err = os.ReadFile(t.truststorePath); err != nil {
			return nil, fmt.Errorf("ssl.truststore.location: %w", err)
		}
		if format, err = storeFormat(t.truststoreType, trust); err != nil {
			return nil, fmt.Errorf("ssl.truststore.location %s: %w", t.truststorePath, err)
		}
	}
	if len(trust) == 0 {
		return nil, nil
	}
	if format != storePEM {
		pool, err := loadJavaTrustStore(format, trust, t.truststorePass)
		if err != nil {
			return nil, fmt.Errorf("ssl.truststore.location %s (%s): %w", t.truststorePath, format, err)
		}
		return pool, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(trust) {
		return nil, errors.New("ssl.truststore: no PEM certificate found")
	}
	return pool, nil
}

// parseKeyPair finds the first private key and every certificate in PEM
// text (a keystore file holds both), with the error Kafka users can act on.
func parseKeyPair(certPEM, keyPEM []byte) (tls.Certificate, error) {
	var certs, keys []byte
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			certs = append(certs, pem.EncodeToMemory(b)...)
		}
	}
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
			return tls.Certificate{}, errors.New("ssl.keystore: encrypted private keys are not supported; decrypt it (openssl pkcs8 -nocrypt)")
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			keys = pem.EncodeToMemory(b)
			break
		}
	}
	if len(certs) == 0 {
		return tls.Certificate{}, errors.New("ssl.keystore: no PEM certificate found")
	}
	if len(keys) == 0 {
		return tls.Certificate{}, errors.New("ssl.keystore: no PEM private key found")
	}
	cert, err := tls.X509KeyPair(certs, keys)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ssl.keystore: %w", err)
	}
	return cert, nil
}

// config returns the tls.Config for a new connection. Its
// GetConfigForClient picks up rotated files at each handshake.
func (t *tlsSource) config() *tls.Config {
	return &tls.Config{
		MinVersion: t.minVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.current(), nil
		},
	}
}

// current returns the config, reloading it first if a file changed.
func (t *tlsSource) current() *tls.Config {
	t.mu.Lock()
	if time.Since(t.mu.checked) < tlsRecheck || (t.keystorePath == "" && t.truststorePath == "") {
		cfg := t.mu.cfg
		t.mu.Unlock()
		return cfg
	}
	t.mu.checked = time.Now()
	cfg, oldKey, oldTrust := t.mu.cfg, t.mu.keyStamp, t.mu.trustStmp
	t.mu.Unlock()
	// Stat and read outside the lock: other handshakes go on with the
	// current config meanwhile.
	ks, ts := stampOf(t.keystorePath), stampOf(t.truststorePath)
	if ks == oldKey && ts == oldTrust {
		return cfg
	}
	fresh, err := t.load()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.keyStamp, t.mu.trustStmp = ks, ts
	if err != nil {
		t.log.Error().Err(err).Msg("tls: reloading certificates failed; keeping the previous ones")
		return t.mu.cfg
	}
	t.log.Info().Str("keystore", t.keystorePath).Str("truststore", t.truststorePath).Msg("tls: certificates reloaded")
	t.mu.cfg = fresh
	return fresh
}
