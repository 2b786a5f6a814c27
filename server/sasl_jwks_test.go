package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOAuthJWKSValidation signs tokens with an RSA and an EC key published
// in a JWKS file and checks what the validator accepts: the signature, exp,
// iss, aud, and that neither alg none nor a key outside the set passes.
func TestOAuthJWKSValidation(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	e := base64.RawURLEncoding.EncodeToString
	jwks := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": e(rsaKey.N.Bytes()), "e": e(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": e(ecKey.X.FillBytes(make([]byte, 32))), "y": e(ecKey.Y.FillBytes(make([]byte, 32)))},
	}}
	data, _ := json.Marshal(jwks)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	look := securityLookup{settings: map[string]string{
		"sasl.oauthbearer.jwks.endpoint.url":  "file://" + path,
		"sasl.oauthbearer.expected.audience":  "kafka,other",
		"sasl.oauthbearer.expected.issuer":    "https://issuer.example",
		"sasl.oauthbearer.clock.skew.seconds": "0",
	}, listener: "sasl_ssl"}
	v, err := newOAuthValidator(look)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(extra string) string {
		return fmt.Sprintf(`{"sub":"alice","iss":"https://issuer.example","aud":["kafka"],"exp":%d%s}`, now.Add(time.Hour).Unix(), extra)
	}
	sign := func(alg, kid, payload string, key crypto.Signer) string {
		signed := e([]byte(fmt.Sprintf(`{"alg":%q,"kid":%q}`, alg, kid))) + "." + e([]byte(payload))
		d := sha256.Sum256([]byte(signed))
		var sig []byte
		switch k := key.(type) {
		case *rsa.PrivateKey:
			sig, _ = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		case *ecdsa.PrivateKey:
			r, s, _ := ecdsa.Sign(rand.Reader, k, d[:])
			sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		}
		return signed + "." + e(sig)
	}
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{
		{"RS256", sign("RS256", "r1", claims(""), rsaKey), true},
		{"ES256", sign("ES256", "e1", claims(""), ecKey), true},
		{"no kid", sign("ES256", "", claims(""), ecKey), true},
		{"unknown key", sign("RS256", "r1", claims(""), otherKey), false},
		{"alg none", e([]byte(`{"alg":"none"}`)) + "." + e([]byte(claims(""))) + ".", false},
		{"alg confusion", sign("ES256", "r1", claims(""), ecKey), false},
		{"expired", sign("RS256", "r1", fmt.Sprintf(`{"sub":"alice","iss":"https://issuer.example","aud":"kafka","exp":%d}`, now.Add(-time.Minute).Unix()), rsaKey), false},
		{"wrong issuer", sign("RS256", "r1", fmt.Sprintf(`{"sub":"alice","iss":"https://evil","aud":"kafka","exp":%d}`, now.Add(time.Hour).Unix()), rsaKey), false},
		{"wrong audience", sign("RS256", "r1", fmt.Sprintf(`{"sub":"alice","iss":"https://issuer.example","aud":"web","exp":%d}`, now.Add(time.Hour).Unix()), rsaKey), false},
	} {
		tok, err := v.validate(tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		} else if tc.ok && tok.principal != "alice" {
			t.Errorf("%s: principal %q", tc.name, tok.principal)
		}
	}

	// A rotated key set is picked up without a restart.
	rotated, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r2", "n": e(otherKey.N.Bytes()), "e": e(big.NewInt(int64(otherKey.E)).Bytes())},
	}})
	if err := os.WriteFile(path+".new", rotated, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := v.validate(sign("RS256", "r2", claims(""), otherKey)); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the rotated JWKS was not picked up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := v.validate(sign("RS256", "r1", claims(""), rsaKey)); err == nil {
		t.Fatal("a key removed from the JWKS still validates")
	}

	// Unsecured tokens are refused unless asked for.
	if _, err := newOAuthValidator(securityLookup{settings: map[string]string{}, listener: "x"}); err == nil {
		t.Fatal("OAUTHBEARER without a JWKS or the unsecured validator was accepted")
	}
}
