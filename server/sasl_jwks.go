package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// JWT signature checks against a JSON Web Key Set (RFC 7517) for
// OAUTHBEARER (KIP-768's sasl.oauthbearer.jwks.endpoint.url). RS256/384/512
// and ES256/384/512 are verified with crypto/rsa and crypto/ecdsa: the
// handful of lines that needs is easier to audit than a JOSE library's
// surface (algorithm confusion, "none", embedded keys), none of which a
// broker wants. A file: URL is re-read when the file changes; an http(s)
// URL is fetched at start and every sasl.oauthbearer.jwks.endpoint.refresh.ms,
// and at once (at most every 10 s) when a token names an unknown key id.

type jwk struct {
	kid string
	alg string // may be empty
	pub crypto.PublicKey
}

type jwksSource struct {
	url     string
	path    string // for file: URLs
	refresh time.Duration

	mu struct {
		sync.Mutex
		keys    []jwk
		stamp   fileStamp
		fetched time.Time
		checked time.Time
	}
}

func newJWKSSource(raw string, refresh time.Duration) (*jwksSource, error) {
	j := &jwksSource{url: raw, refresh: refresh}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("sasl.oauthbearer.jwks.endpoint.url: %w", err)
	}
	if u.Scheme == "file" {
		j.path = u.Path
		if j.path == "" {
			j.path = u.Opaque
		}
	}
	keys, err := j.fetch()
	if err != nil {
		return nil, err
	}
	j.mu.keys, j.mu.fetched, j.mu.checked, j.mu.stamp = keys, time.Now(), time.Now(), stampOf(j.path)
	return j, nil
}

func (j *jwksSource) fetch() ([]jwk, error) {
	var data []byte
	var err error
	if j.path != "" {
		data, err = os.ReadFile(j.path)
	} else {
		cl := http.Client{Timeout: 10 * time.Second}
		var resp *http.Response
		if resp, err = cl.Get(j.url); err == nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %s", resp.Status)
			} else {
				data, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", j.url, err)
	}
	return parseJWKS(data)
}

func parseJWKS(data []byte) ([]jwk, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Alg, Use string
			N, E               string
			Crv, X, Y          string
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var keys []jwk
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := b64url(k.N)
			e, err2 := b64url(k.E)
			if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
				return nil, fmt.Errorf("jwks: RSA key %q is malformed", k.Kid)
			}
			keys = append(keys, jwk{kid: k.Kid, alg: k.Alg, pub: &rsa.PublicKey{
				N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}})
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			x, err1 := b64url(k.X)
			y, err2 := b64url(k.Y)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("jwks: EC key %q is malformed", k.Kid)
			}
			size := (curve.Params().BitSize + 7) / 8
			if len(x) != size || len(y) != size {
				return nil, fmt.Errorf("jwks: EC key %q has bad coordinates", k.Kid)
			}
			uncompressed := append(append([]byte{4}, x...), y...)
			pub, err := ecdsa.ParseUncompressedPublicKey(curve, uncompressed)
			if err != nil {
				return nil, fmt.Errorf("jwks: EC key %q: %w", k.Kid, err)
			}
			keys = append(keys, jwk{kid: k.Kid, alg: k.Alg, pub: pub})
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no RSA or EC signing key")
	}
	return keys, nil
}

// current returns the keys, re-reading them when due. unknownKid asks for
// an early refresh of an http(s) set.
func (j *jwksSource) current(unknownKid bool) []jwk {
	j.mu.Lock()
	keys, stamp := j.mu.keys, j.mu.stamp
	due, stat := false, false
	now := time.Now()
	if j.path != "" {
		if now.Sub(j.mu.checked) >= time.Second {
			j.mu.checked, stat = now, true
		}
	} else if now.Sub(j.mu.fetched) >= j.refresh || (unknownKid && now.Sub(j.mu.fetched) >= 10*time.Second) {
		j.mu.fetched, due = now, true
	}
	j.mu.Unlock()
	if stat { // outside the lock, as every read of the set
		if st := stampOf(j.path); st != stamp {
			j.mu.Lock()
			j.mu.stamp = st
			j.mu.Unlock()
			due = true
		}
	}
	if !due {
		return keys
	}
	fresh, err := j.fetch() // outside the lock
	if err != nil {
		return keys // keep the last good set
	}
	j.mu.Lock()
	j.mu.keys = fresh
	j.mu.Unlock()
	return fresh
}

var jwsHashes = map[string]crypto.Hash{
	"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512,
	"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512,
}

// verify checks a JWS signature over signed with the key named by kid (or,
// without kid, any key of the algorithm's type).
func (j *jwksSource) verify(alg, kid string, signed, sig []byte) error {
	hash, ok := jwsHashes[alg]
	if !ok {
		return fmt.Errorf("token algorithm %q is not accepted", alg)
	}
	h := hash.New()
	h.Write(signed)
	digest := h.Sum(nil)
	try := func(keys []jwk) (found bool, err error) {
		for _, k := range keys {
			if (kid != "" && k.kid != kid) || (k.alg != "" && k.alg != alg) {
				continue
			}
			switch pub := k.pub.(type) {
			case *rsa.PublicKey:
				if alg[0] != 'R' {
					continue
				}
				found = true
				if rsa.VerifyPKCS1v15(pub, hash, digest, sig) == nil {
					return true, nil
				}
			case *ecdsa.PublicKey:
				size := (pub.Curve.Params().BitSize + 7) / 8
				if alg[0] != 'E' || len(sig) != 2*size {
					continue
				}
				found = true
				r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
				if ecdsa.Verify(pub, digest, r, s) {
					return true, nil
				}
			}
		}
		if found {
			return true, errors.New("token signature does not verify")
		}
		return false, fmt.Errorf("no key in the JWKS for kid %q and alg %s", kid, alg)
	}
	found, err := try(j.current(false))
	if !found {
		_, err = try(j.current(true))
	}
	return err
}
