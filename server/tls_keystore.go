package server

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// Java keystores: ssl.keystore.type and ssl.truststore.type JKS and
// PKCS12, besides PEM (tls.go).
//
//   - JKS is read by github.com/pavlo-v-chernykh/keystore-go: the JDK's
//     "JKS" format (magic 0xFEEDFEED) with keys under the JDK's own key
//     protection (what keytool -storetype JKS writes). JCEKS stores are
//     not read. The store's integrity digest is always checked, so a JKS
//     truststore needs ssl.truststore.password (Kafka lets it be unset and
//     then skips the check). Passwords must be Latin-1.
//   - PKCS12 is read by software.sslmate.com/src/go-pkcs12: what keytool
//     writes since JDK 12 (PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC,
//     HMAC-SHA256 MAC), the older PBEWithSHA1AndDESede / RC2-40 forms of
//     JDK 8-11 and openssl, and password-less truststores. A truststore's
//     certificates must carry Java's trusted-certificate mark (keytool
//     -importcert adds it; openssl does not), as the JDK itself requires.
//     The key must be protected by the store password (keytool always
//     does so for PKCS12), so ssl.key.password is not used for it.
//   - A keystore holds exactly one key entry (Kafka has no setting that
//     picks an alias); its certificate chain is served leaf first. RSA,
//     ECDSA and Ed25519 keys work.
//   - As the JDK reads a PKCS12 file given as JKS and the other way round
//     (keystore.type.compat), the declared type picks between Java stores
//     and PEM, and the file's first bytes pick which Java format it is.
//     Without a declared type the file's content decides among all three
//     (Kafka's default type is JKS; Skiff's was PEM, and both keep working).

// Store formats, as ssl.keystore.type and ssl.truststore.type name them.
const (
	storePEM    = "PEM"
	storeJKS    = "JKS"
	storePKCS12 = "PKCS12"
)

var storeTypes = []string{storePEM, storeJKS, storePKCS12}

// jksMagic and jceksMagic open a JKS and a JCEKS file.
const (
	jksMagic   = 0xFEEDFEED
	jceksMagic = 0xCECECECE
)

// storeFormat decides how a store file is read from the declared type
// (empty when not set) and its content.
func storeFormat(declared string, data []byte) (string, error) {
	declared = strings.ToUpper(strings.TrimSpace(declared))
	isPEM := bytes.Contains(data[:min(len(data), 4096)], []byte("-----BEGIN"))
	if declared == storePEM || (declared == "" && isPEM) {
		return storePEM, nil
	}
	if len(data) >= 4 {
		switch binary.BigEndian.Uint32(data) {
		case jksMagic:
			return storeJKS, nil
		case jceksMagic:
			return "", errors.New("JCEKS stores are not supported; convert it with keytool -importkeystore -deststoretype PKCS12")
		}
	}
	if len(data) > 0 && data[0] == 0x30 { // a DER SEQUENCE: PKCS#12's PFX
		return storePKCS12, nil
	}
	if isPEM {
		return "", fmt.Errorf("the file is PEM, not %s; set the type to PEM", declared)
	}
	return "", errors.New("the file is neither PEM, JKS nor PKCS12")
}

// loadJavaKeyStore reads the key entry of a JKS or PKCS12 keystore.
// keyPass is ssl.key.password, or the store password when unset.
func loadJavaKeyStore(format string, data []byte, storePass, keyPass string) (tls.Certificate, error) {
	var (
		key   any
		chain [][]byte // DER, leaf first
	)
	switch format {
	case storeJKS:
		ks, err := loadJKS(data, storePass)
		if err != nil {
			return tls.Certificate{}, err
		}
		var aliases []string
		for _, a := range ks.Aliases() {
			if ks.IsPrivateKeyEntry(a) {
				aliases = append(aliases, a)
			}
		}
		if len(aliases) != 1 {
			return tls.Certificate{}, fmt.Errorf("a keystore must hold exactly one key entry, this one holds %d (%s)", len(aliases), strings.Join(aliases, ", "))
		}
		kp, err := latin1(keyPass)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("ssl.key.password: %w", err)
		}
		entry, err := ks.GetPrivateKeyEntry(aliases[0], kp)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("key entry %q (wrong ssl.key.password?): %w", aliases[0], err)
		}
		if key, err = x509.ParsePKCS8PrivateKey(entry.PrivateKey); err != nil {
			return tls.Certificate{}, fmt.Errorf("key entry %q: %w", aliases[0], err)
		}
		for _, c := range entry.CertificateChain {
			chain = append(chain, c.Content)
		}
	case storePKCS12:
		k, leaf, cas, err := pkcs12.DecodeChain(data, storePass)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("PKCS12 (wrong ssl.keystore.password, or not exactly one key?): %w", err)
		}
		key = k
		for _, c := range orderChain(k, append([]*x509.Certificate{leaf}, cas...)) {
			chain = append(chain, c.Raw)
		}
	default:
		return tls.Certificate{}, fmt.Errorf("not a Java keystore format: %s", format)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || len(chain) == 0 {
		return tls.Certificate{}, errors.New("the key entry has no usable key or no certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key entry certificate: %w", err)
	}
	if !publicKeyEqual(leaf.PublicKey, signer.Public()) {
		return tls.Certificate{}, errors.New("the key entry's first certificate is not for its private key")
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// loadJavaTrustStore reads the trusted certificates of a JKS or PKCS12
// truststore.
func loadJavaTrustStore(format string, data []byte, pass string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	switch format {
	case storeJKS:
		ks, err := loadJKS(data, pass)
		if err != nil {
			return nil, err
		}
		for _, a := range ks.Aliases() {
			e, err := ks.GetTrustedCertificateEntry(a)
			if err != nil {
				continue // a key entry: the JDK trusts only certificate entries too
			}
			c, err := x509.ParseCertificate(e.Certificate.Content)
			if err != nil {
				return nil, fmt.Errorf("certificate %q: %w", a, err)
			}
			pool.AddCert(c)
			n++
		}
	case storePKCS12:
		certs, err := pkcs12.DecodeTrustStore(data, pass)
		if err != nil {
			return nil, fmt.Errorf("PKCS12 truststore (wrong ssl.truststore.password?): %w", err)
		}
		for _, c := range certs {
			pool.AddCert(c)
			n++
		}
	default:
		return nil, fmt.Errorf("not a Java keystore format: %s", format)
	}
	if n == 0 {
		return nil, errors.New("the truststore holds no trusted certificate")
	}
	return pool, nil
}

func loadJKS(data []byte, pass string) (keystore.KeyStore, error) {
	p, err := latin1(pass)
	if err != nil {
		return keystore.KeyStore{}, err
	}
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(data), p); err != nil {
		return keystore.KeyStore{}, fmt.Errorf("JKS (wrong password?): %w", err)
	}
	return ks, nil
}

// latin1 turns a password into the bytes keystore-go expects: it widens
// each byte to a UTF-16 unit, as the JDK does with each char, so the
// password's characters must each fit in a byte.
func latin1(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			return nil, errors.New("JKS passwords with characters beyond Latin-1 are not supported")
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// orderChain puts the certificate of key first: a PKCS#12 file does not
// say which of its certificates is the leaf.
func orderChain(key any, certs []*x509.Certificate) []*x509.Certificate {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return certs
	}
	i := slices.IndexFunc(certs, func(c *x509.Certificate) bool { return publicKeyEqual(c.PublicKey, signer.Public()) })
	if i <= 0 {
		return certs
	}
	out := []*x509.Certificate{certs[i]}
	return append(out, slices.Delete(slices.Clone(certs), i, i+1)...)
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
