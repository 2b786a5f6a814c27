package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SASL/OAUTHBEARER (RFC 7628, KIP-255, KIP-768), server side.
//
// A token is validated one of two ways, chosen explicitly:
//
//   - JWT signed with a key from a JWKS (sasl.oauthbearer.jwks.endpoint.url,
//     a file: or http(s): URL), with exp, and iss/aud when
//     sasl.oauthbearer.expected.issuer/audience are set, as Kafka's
//     OAuthBearerValidatorCallbackHandler. See sasl_jwks.go.
//   - Unsecured tokens ({"alg":"none"}), as Kafka's
//     OAuthBearerUnsecuredValidatorCallbackHandler, only when
//     sasl.server.callback.handler.class names that class. Kafka uses it
//     by default; Skiff does not, since it lets anyone claim any principal.
//
// A rejected token is answered as Kafka answers it: a server message
// {"status":"invalid_token"} that the client acknowledges with 0x01, then
// SASL_AUTHENTICATION_FAILED with that message.

type oauthValidator struct {
	unsecured bool
	jwks      *jwksSource // when !unsecured

	subClaim, scopeClaim string
	requiredScope        []string // unsecured: unsecuredValidatorRequiredScope
	audience             []string
	issuer               string
	skew                 time.Duration
	now                  func() time.Time
}

func newOAuthValidator(look securityLookup) (*oauthValidator, error) {
	v := &oauthValidator{subClaim: "sub", scopeClaim: "scope", now: time.Now}
	class, _ := look.getMech("OAUTHBEARER", "sasl.server.callback.handler.class")
	url, _ := look.get("sasl.oauthbearer.jwks.endpoint.url")
	switch {
	case class == unsecuredValidatorClass:
		v.unsecured = true
		jaas, _ := look.getMech("OAUTHBEARER", "sasl.jaas.config")
		opts := map[string]string{}
		if jaas != "" {
			var err error
			if opts, err = parseJAAS(jaas); err != nil {
				return nil, fmt.Errorf("oauthbearer.sasl.jaas.config: %w", err)
			}
		}
		if n := opts["unsecuredValidatorPrincipalClaimName"]; n != "" {
			v.subClaim = n
		}
		if n := opts["unsecuredValidatorScopeClaimName"]; n != "" {
			v.scopeClaim = n
		}
		if s := opts["unsecuredValidatorRequiredScope"]; s != "" {
			v.requiredScope = strings.Fields(strings.ReplaceAll(s, ",", " "))
		}
		if s := opts["unsecuredValidatorAllowableClockSkewMs"]; s != "" {
			ms, err := strconv.ParseInt(s, 10, 64)
			if err != nil || ms < 0 {
				return nil, fmt.Errorf("unsecuredValidatorAllowableClockSkewMs %q is not a non-negative number", s)
			}
			v.skew = time.Duration(ms) * time.Millisecond
		}
		return v, nil
	case class != "" && class != jwtValidatorClass && class != jwtValidatorClassOld:
		return nil, fmt.Errorf("sasl.server.callback.handler.class %s is not supported", class)
	case url == "":
		return nil, errors.New("set sasl.oauthbearer.jwks.endpoint.url to validate JWTs, or (for tests) sasl.server.callback.handler.class=" +
			unsecuredValidatorClass + " to accept unsecured tokens")
	}
	v.skew = 30 * time.Second
	if s, ok := look.get("sasl.oauthbearer.clock.skew.seconds"); ok {
		v.skew = time.Duration(parseLong(s)) * time.Second
	}
	if s, ok := look.get("sasl.oauthbearer.sub.claim.name"); ok && s != "" {
		v.subClaim = s
	}
	if s, ok := look.get("sasl.oauthbearer.scope.claim.name"); ok && s != "" {
		v.scopeClaim = s
	}
	if s, ok := look.get("sasl.oauthbearer.expected.audience"); ok {
		for _, a := range strings.Split(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				v.audience = append(v.audience, a)
			}
		}
	}
	v.issuer, _ = look.get("sasl.oauthbearer.expected.issuer")
	refresh := time.Hour
	if s, ok := look.get("sasl.oauthbearer.jwks.endpoint.refresh.ms"); ok {
		refresh = durationMs(s)
	}
	src, err := newJWKSSource(url, refresh)
	if err != nil {
		return nil, err
	}
	v.jwks = src
	return v, nil
}

// oauthToken is a validated token.
type oauthToken struct {
	principal string
	expiry    time.Time
}

// validate checks a compact JWS; the error is for the log only.
func (v *oauthValidator) validate(token string) (oauthToken, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return oauthToken{}, errors.New("token is not a compact JWS (header.payload.signature)")
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	hb, err := b64url(parts[0])
	if err != nil || json.Unmarshal(hb, &hdr) != nil {
		return oauthToken{}, errors.New("token header is not base64url JSON")
	}
	pb, err := b64url(parts[1])
	if err != nil {
		return oauthToken{}, errors.New("token payload is not base64url")
	}
	if v.unsecured {
		if hdr.Alg != "none" || parts[2] != "" {
			return oauthToken{}, fmt.Errorf("unsecured validation needs alg none and no signature, got alg %q", hdr.Alg)
		}
	} else {
		sig, err := b64url(parts[2])
		if err != nil {
			return oauthToken{}, errors.New("token signature is not base64url")
		}
		if err := v.jwks.verify(hdr.Alg, hdr.Kid, []byte(parts[0]+"."+parts[1]), sig); err != nil {
			return oauthToken{}, err
		}
	}
	return v.checkClaims(pb)
}

func (v *oauthValidator) checkClaims(payload []byte) (oauthToken, error) {
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return oauthToken{}, errors.New("token claims are not a JSON object")
	}
	now := v.now()
	num := func(name string) (time.Time, bool, error) {
		raw, ok := claims[name]
		if !ok {
			return time.Time{}, false, nil
		}
		n, isNum := raw.(json.Number)
		f, err := n.Float64()
		if !isNum || err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
			return time.Time{}, false, fmt.Errorf("claim %s is not a number", name)
		}
		return time.UnixMilli(int64(f * 1000)), true, nil
	}
	exp, ok, err := num("exp")
	if err != nil {
		return oauthToken{}, err
	}
	if !ok {
		return oauthToken{}, errors.New("token has no exp claim")
	}
	if !now.Before(exp.Add(v.skew)) {
		return oauthToken{}, fmt.Errorf("token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok, err := num("nbf"); err != nil {
		return oauthToken{}, err
	} else if ok && now.Add(v.skew).Before(nbf) {
		return oauthToken{}, errors.New("token is not valid yet (nbf)")
	}
	if _, _, err := num("iat"); err != nil {
		return oauthToken{}, err
	}
	sub, _ := claims[v.subClaim].(string)
	if strings.TrimSpace(sub) == "" {
		return oauthToken{}, fmt.Errorf("token has no %s claim", v.subClaim)
	}
	if v.issuer != "" {
		if iss, _ := claims["iss"].(string); iss != v.issuer {
			return oauthToken{}, fmt.Errorf("token issuer %q is not the expected one", iss)
		}
	}
	if len(v.audience) > 0 {
		var auds []string
		switch a := claims["aud"].(type) {
		case string:
			auds = []string{a}
		case []any:
			for _, x := range a {
				if s, ok := x.(string); ok {
					auds = append(auds, s)
				}
			}
		}
		if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(v.audience, a) }) {
			return oauthToken{}, errors.New("token audience is not an expected one")
		}
	}
	if len(v.requiredScope) > 0 {
		var scopes []string
		switch s := claims[v.scopeClaim].(type) {
		case string:
			scopes = strings.Fields(s)
		case []any:
			for _, x := range s {
				if str, ok := x.(string); ok {
					scopes = append(scopes, str)
				}
			}
		}
		for _, need := range v.requiredScope {
			if !slices.Contains(scopes, need) {
				return oauthToken{}, fmt.Errorf("token lacks the required scope %q", need)
			}
		}
	}
	return oauthToken{principal: sub, expiry: exp}, nil
}

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// oauthInitial is the client's initial response: gs2 header, then
// key=value pairs separated by 0x01, among them auth=Bearer <token>.
type oauthInitial struct {
	authzid    string
	token      string
	extensions map[string]string
}

func parseOAuthInitial(msg []byte) (oauthInitial, error) {
	var out oauthInitial
	s := string(msg)
	rest, ok := strings.CutPrefix(s, "n,")
	if !ok {
		if strings.HasPrefix(s, "y,") || strings.HasPrefix(s, "p=") {
			return out, errors.New("oauthbearer: channel binding is not supported")
		}
		return out, errors.New("oauthbearer: message does not start with a gs2 header")
	}
	az, rest, ok := strings.Cut(rest, ",")
	if !ok {
		return out, errors.New("oauthbearer: bad gs2 header")
	}
	if az != "" {
		if out.authzid, ok = strings.CutPrefix(az, "a="); !ok {
			return out, errors.New("oauthbearer: bad authzid")
		}
	}
	kvs, ok := strings.CutPrefix(rest, "\x01")
	if !ok || !strings.HasSuffix(kvs, "\x01\x01") {
		return out, errors.New("oauthbearer: key-value pairs must be framed by 0x01")
	}
	kvs = strings.TrimSuffix(kvs, "\x01\x01")
	out.extensions = map[string]string{}
	for _, kv := range strings.Split(kvs, "\x01") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return out, errors.New("oauthbearer: a pair is not key=value")
		}
		if k == "auth" {
			scheme, tok, ok := strings.Cut(val, " ")
			if !ok || !strings.EqualFold(scheme, "bearer") {
				return out, errors.New("oauthbearer: auth is not Bearer <token>")
			}
			out.token = strings.TrimLeft(tok, " ")
			continue
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return out, errors.New("oauthbearer: bad extension name")
			}
		}
		out.extensions[k] = val
	}
	if out.token == "" {
		return out, errors.New("oauthbearer: no auth=Bearer token")
	}
	return out, nil
}

type oauthSession struct {
	v        *oauthValidator
	token    oauthToken
	errorMsg string // sent to the client; it answers with 0x01
	detail   string // why the token was rejected, for the log
}

func (o *oauthSession) principal() string  { return o.token.principal }
func (o *oauthSession) expires() time.Time { return o.token.expiry }

func (o *oauthSession) step(in []byte) ([]byte, bool, error) {
	if o.errorMsg != "" {
		if len(in) == 1 && in[0] == 0x01 {
			return nil, false, &saslError{msg: o.errorMsg, detail: o.detail}
		}
		return nil, false, &saslError{detail: "oauthbearer: expected 0x01 after the error"}
	}
	init, err := parseOAuthInitial(in)
	if err != nil {
		return nil, false, &saslError{detail: err.Error()}
	}
	tok, err := o.v.validate(init.token)
	if err != nil {
		o.errorMsg, o.detail = `{"status":"invalid_token"}`, err.Error()
		return []byte(o.errorMsg), false, errOAuthRejected
	}
	if init.authzid != "" && init.authzid != tok.principal {
		return nil, false, &saslError{msg: fmt.Sprintf("Authentication failed: Client requested an authorization id (%s) that is different from the token's principal name (%s)",
			init.authzid, tok.principal)}
	}
	o.token = tok
	return nil, true, nil
}

// errOAuthRejected is not a failure yet: the server's error message goes
// to the client, which must acknowledge it before the exchange fails.
var errOAuthRejected = errors.New("oauthbearer: token rejected")
