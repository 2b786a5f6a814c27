package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPrincipalMappingRules(t *testing.T) {
	const dn = "CN=alice,OU=ServiceUsers,O=Acme,C=US"
	for _, tc := range []struct {
		rules, want string
		ok          bool
	}{
		{"", dn, true},
		{"DEFAULT", dn, true},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/`, "alice", true},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$3/L`, "alice@acme", true},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$3/U`, "ALICE@ACME", true},
		{`RULE:^CN=(.*?),OU=Admins.*$/$1/, DEFAULT`, dn, true},
		{`RULE:^CN=(.*?),OU=Admins.*$/$1/`, "", false},
		{`RULE:^CN=([^,]*).*$/user-$1-\$/`, "user-alice-$", true},
	} {
		rules, err := parsePrincipalRules(tc.rules)
		if err != nil {
			t.Fatalf("%q: %v", tc.rules, err)
		}
		got, ok := mapPrincipal(rules, dn)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: got %q %v, want %q %v", tc.rules, got, ok, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{"RULE:x", "NOPE", "RULE:(/x/"} {
		if _, err := parsePrincipalRules(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseJAAS(t *testing.T) {
	opts, err := parseJAAS(`org.apache.kafka.common.security.plain.PlainLoginModule required
		username="admin" password="a b\"c" user_admin="x;y" debug=true;`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"username": "admin", "password": `a b"c`, "user_admin": "x;y", "debug": "true"}
	if fmt.Sprint(opts) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", opts, want)
	}
	for _, bad := range []string{"", "Module", `M required user_a="unterminated;`, "M required novalue"} {
		if _, err := parseJAAS(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestScramServerRFC7677 runs the exchange of RFC 7677's SCRAM-SHA-256
// example against the server with its salt and iteration count, checking
// the server signature the RFC gives.
func TestScramServerRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	salted, err := scramSHA256.saltedPassword("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	st := &scramStore{}
	st.mu.users = map[string]map[int8]scramCredential{"user": {1: scramSHA256.credentialFromSalted(salted, salt, 4096)}}
	s := newScramSession(st, scramSHA256)
	out, done, err := s.step([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done {
		t.Fatalf("client-first: %v %v", err, done)
	}
	// The server nonce is random; compute the proof for the one chosen.
	first := string(out)
	nonce := strings.TrimPrefix(strings.Split(first, ",")[0], "r=")
	if !strings.HasPrefix(nonce, "rOprNGfwEbeRWgbNEkqO") || !strings.HasSuffix(first, ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096") {
		t.Fatalf("server-first %q", first)
	}
	final := "c=biws,r=" + nonce
	authMsg := "n=user,r=rOprNGfwEbeRWgbNEkqO," + first + "," + final
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	sig := hmacSHA256(stored[:], authMsg)
	proof := make([]byte, len(sig))
	for i := range sig {
		proof[i] = clientKey[i] ^ sig[i]
	}
	out, done, err = s.step([]byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof)))
	if err != nil || !done {
		t.Fatalf("client-final: %v %v", err, done)
	}
	wantV := "v=" + base64.StdEncoding.EncodeToString(hmacSHA256(hmacSHA256(salted, "Server Key"), authMsg))
	if string(out) != wantV || s.principal() != "user" {
		t.Fatalf("server-final %q principal %q, want %q", out, s.principal(), wantV)
	}

	// The same with a wrong proof fails without saying why.
	s = newScramSession(st, scramSHA256)
	out, _, _ = s.step([]byte("n,,n=user,r=abc"))
	nonce = strings.TrimPrefix(strings.Split(string(out), ",")[0], "r=")
	if _, _, err := s.step([]byte("c=biws,r=" + nonce + ",p=" + base64.StdEncoding.EncodeToString(make([]byte, 32)))); err == nil || err.(*saslError).msg != "" {
		t.Fatalf("wrong proof: %v", err)
	}
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func TestOAuthUnsecuredClaims(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := &oauthValidator{unsecured: true, subClaim: "sub", scopeClaim: "scope", requiredScope: []string{"kafka"}, now: func() time.Time { return now }}
	tok := func(header, claims string) string {
		e := base64.RawURLEncoding.EncodeToString
		return e([]byte(header)) + "." + e([]byte(claims)) + "."
	}
	exp := now.Add(time.Hour).Unix()
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{
		{"valid", tok(`{"alg":"none"}`, fmt.Sprintf(`{"sub":"a","exp":%d,"scope":"x kafka"}`, exp)), true},
		{"expired", tok(`{"alg":"none"}`, fmt.Sprintf(`{"sub":"a","exp":%d,"scope":"kafka"}`, now.Add(-time.Second).Unix())), false},
		{"no exp", tok(`{"alg":"none"}`, `{"sub":"a","scope":"kafka"}`), false},
		{"no sub", tok(`{"alg":"none"}`, fmt.Sprintf(`{"exp":%d,"scope":"kafka"}`, exp)), false},
		{"missing scope", tok(`{"alg":"none"}`, fmt.Sprintf(`{"sub":"a","exp":%d}`, exp)), false},
		{"signed", tok(`{"alg":"RS256"}`, fmt.Sprintf(`{"sub":"a","exp":%d,"scope":"kafka"}`, exp)), false},
		{"not yet valid", tok(`{"alg":"none"}`, fmt.Sprintf(`{"sub":"a","exp":%d,"nbf":%d,"scope":"kafka"}`, exp, exp-1)), false},
		{"exp is a string", tok(`{"alg":"none"}`, `{"sub":"a","exp":"soon","scope":"kafka"}`), false},
	} {
		_, err := v.validate(tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// FuzzScramMessages feeds arbitrary client messages to both steps of the
// SCRAM exchange: they must fail or succeed, never panic.
func FuzzScramMessages(f *testing.F) {
	f.Add("n,,n=user,r=abc", "c=biws,r=abcXYZ,p=AAAA")
	f.Add("n,a=user,n=us=2Cer,r=x,e=1", "c=biws,r=x,e=2,p=")
	f.Add("y,,m=x,n=u,r=n", "p=")
	st := &scramStore{}
	st.mu.users = map[string]map[int8]scramCredential{}
	for _, u := range []string{"user", "u", "us,er"} {
		c, _ := scramSHA256.newCredential("pw", 4096)
		st.mu.users[u] = map[int8]scramCredential{1: c}
	}
	f.Fuzz(func(t *testing.T, first, final string) {
		if cf, err := parseScramClientFirst(first); err == nil && cf.user == "" {
			t.Fatal("empty user accepted")
		}
		parseScramClientFinal(final)
		s := newScramSession(st, scramSHA256)
		if _, done, err := s.step([]byte(first)); err != nil || done {
			return
		}
		if _, done, err := s.step([]byte(final)); err == nil && done {
			t.Fatalf("authenticated without the password: %q %q", first, final)
		}
	})
}

// FuzzOAuthBearerMessages feeds arbitrary initial responses and tokens to
// the OAUTHBEARER parser and the unsecured validator.
func FuzzOAuthBearerMessages(f *testing.F) {
	e := base64.RawURLEncoding.EncodeToString
	f.Add([]byte("n,,\x01auth=Bearer " + e([]byte(`{"alg":"none"}`)) + "." + e([]byte(`{"sub":"a","exp":99999999999}`)) + ".\x01\x01"))
	f.Add([]byte("n,a=a,\x01auth=Bearer x.y.z\x01ext=1\x01\x01"))
	f.Add([]byte("n,,\x01\x01"))
	v := &oauthValidator{unsecured: true, subClaim: "sub", scopeClaim: "scope", now: time.Now}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if init, err := parseOAuthInitial(msg); err == nil && init.token == "" {
			t.Fatal("accepted a message without a token")
		}
		s := &oauthSession{v: v}
		s.step(msg)
		s.step([]byte{1})
		v.validate(string(msg))
	})
}
