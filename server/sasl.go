package server

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners, as Kafka's
// SaslServerAuthenticator does it (KIP-43, KIP-152, KIP-368):
//
//   - Until a client has authenticated, only ApiVersions, SaslHandshake and
//     SaslAuthenticate are served; any other request closes the
//     connection, and frames are limited to sasl.server.max.receive.size.
//   - SaslHandshake picks the mechanism; SaslAuthenticate carries its
//     messages. A failure answers SASL_AUTHENTICATION_FAILED with Kafka's
//     message and closes the connection.
//   - With connections.max.reauth.ms > 0, SaslAuthenticate v1+ tells the
//     client how long its session lasts; a client that sends anything but
//     SaslHandshake after that is disconnected. Re-authentication must use
//     the same mechanism and yield the same principal.
//
// SaslHandshake v0 is advertised, as Kafka advertises it and librdkafka
// requires it to be, but the raw SASL tokens that follow a v0 handshake
// (outside Kafka framing) are not understood: such a connection is closed.
// Every client from Kafka 1.0 and librdkafka 1.1 on uses v1 when offered.

func init() {
	register(kmsg.SASLHandshake, 0, 1, (*Server).handleSaslHandshake)
	register(kmsg.SASLAuthenticate, 0, 2, (*Server).handleSaslAuthenticate)
}

// supportedMechanisms are the SASL mechanisms Skiff implements.
var supportedMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}

// defaultMaxReceive is sasl.server.max.receive.size's default: the
// largest frame read before a client has authenticated.
const defaultMaxReceive = 524288

// saslListener is the SASL setup of one listener.
type saslListener struct {
	mechanisms []string
	plain      map[string]string // PLAIN: user -> password, from the JAAS config
	scram      *scramStore       // set when a SCRAM mechanism is enabled (shared by all listeners)
	oauth      *oauthValidator
	reauth     map[string]time.Duration // mechanism -> connections.max.reauth.ms; 0: sessions never expire
	maxReceive int32
}

func newSASLListener(look securityLookup, c *Config) (*saslListener, error) {
	sl := &saslListener{reauth: map[string]time.Duration{}, maxReceive: defaultMaxReceive}
	mechs, ok := look.get("sasl.enabled.mechanisms")
	if !ok || mechs == "" {
		// Kafka's default is GSSAPI, which Skiff does not have.
		return nil, errors.New("a SASL listener needs sasl.enabled.mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)")
	}
	for _, m := range strings.Split(mechs, ",") {
		if m = strings.ToUpper(strings.TrimSpace(m)); m != "" && !slices.Contains(sl.mechanisms, m) {
			sl.mechanisms = append(sl.mechanisms, m)
		}
	}
	if v, ok := look.get("sasl.server.max.receive.size"); ok {
		sl.maxReceive = int32(parseLong(v))
	}
	for _, m := range sl.mechanisms {
		if v, ok := look.getMech(m, "connections.max.reauth.ms"); ok {
			sl.reauth[m] = durationMs(v)
		}
		switch m {
		case "PLAIN":
			jaas, ok := look.getMech(m, "sasl.jaas.config")
			if !ok {
				return nil, errors.New("PLAIN needs listener.name.<listener>.plain.sasl.jaas.config with user_<name>=\"<password>\" entries")
			}
			opts, err := parseJAAS(jaas)
			if err != nil {
				return nil, fmt.Errorf("plain.sasl.jaas.config: %w", err)
			}
			sl.plain = map[string]string{}
			for k, v := range opts {
				if user, ok := strings.CutPrefix(k, "user_"); ok {
					sl.plain[user] = v
				}
			}
		case "SCRAM-SHA-256", "SCRAM-SHA-512":
			sl.scram = c.scramStore()
		case "OAUTHBEARER":
			v, err := newOAuthValidator(look)
			if err != nil {
				return nil, fmt.Errorf("OAUTHBEARER: %w", err)
			}
			sl.oauth = v
		}
	}
	return sl, nil
}

// parseJAAS reads the options of a JAAS login module entry:
//
//	org.apache.kafka...PlainLoginModule required user_alice="secret" debug=true;
//
// Values may be quoted (with \" and \\ escapes) or bare.
func parseJAAS(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, ";")
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return nil, errors.New("expected <LoginModule class> <required|requisite|sufficient|optional> options...;")
	}
	// Skip the class and the control flag.
	rest := strings.TrimSpace(s)
	for range 2 {
		rest = strings.TrimSpace(rest)
		i := strings.IndexAny(rest, " \t\r\n")
		if i < 0 {
			rest = ""
			break
		}
		rest = rest[i:]
	}
	opts := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("option %q is not key=value", rest)
		}
		key := strings.TrimSpace(rest[:eq])
		rest = strings.TrimSpace(rest[eq+1:])
		var val strings.Builder
		if strings.HasPrefix(rest, `"`) {
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				val.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return nil, fmt.Errorf("option %s: unterminated quote", key)
			}
			rest = rest[i+1:]
		} else {
			i := strings.IndexAny(rest, " \t\r\n")
			if i < 0 {
				i = len(rest)
			}
			val.WriteString(rest[:i])
			rest = rest[i:]
		}
		opts[key] = val.String()
	}
	return opts, nil
}

// saslSession is one mechanism's server side of an exchange.
type saslSession interface {
	// step takes the client's message and returns the server's, done when
	// the client is authenticated.
	step(in []byte) (out []byte, done bool, err error)
	// principal names the authenticated user (the User: name).
	principal() string
	// expires is when the credential stops being valid (an OAuth token's
	// exp), or zero.
	expires() time.Time
}

// saslError is an authentication failure. Its message goes to the client,
// so it must say no more than Kafka's does; detail is only logged.
type saslError struct {
	msg    string // empty: Kafka's generic "invalid credentials" message
	detail string
}

func (e *saslError) Error() string { return e.msg + " " + e.detail }

// connAuth is a connection's authentication state. Everything but done is
// used only by the connection's handler goroutine, one request at a time.
type connAuth struct {
	sasl *saslListener // nil: no SASL on this listener

	// done is set once the client has authenticated: the reader then
	// allows frames up to socket.request.max.bytes.
	done atomic.Bool
	// principal is "User:<name>" (or User:ANONYMOUS) once authenticated.
	principal string

	mechanism string      // chosen by SaslHandshake
	session   saslSession // the exchange in progress
	expiry    time.Time   // session end (KIP-368); zero: none
	reauth    bool        // a re-authentication is in progress
	// badReauth is the message SaslAuthenticate fails with when the
	// re-authentication handshake asked for another mechanism.
	badReauth string
	failed    bool
}

// permits reports whether a request may be served now; reason says why
// not (for the log).
func (a *connAuth) permits(key int16, now time.Time) (ok bool, reason string) {
	switch {
	case a.failed:
		return false, "request after failed authentication"
	case key == int16(kmsg.SASLHandshake) || key == int16(kmsg.SASLAuthenticate):
		return true, ""
	case !a.done.Load():
		if key == int16(kmsg.ApiVersions) {
			return true, ""
		}
		return false, fmt.Sprintf("unexpected Kafka request of type %s during SASL authentication", kmsg.NameForKey(key))
	case a.reauth:
		return false, fmt.Sprintf("unexpected Kafka request of type %s during SASL re-authentication", kmsg.NameForKey(key))
	case !a.expiry.IsZero() && now.After(a.expiry):
		return false, "SASL session expired without re-authentication (connections.max.reauth.ms)"
	}
	return true, ""
}

func (s *Server) handleSaslHandshake(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	a := r.auth
	if a == nil || a.sasl == nil {
		// Kafka answers a handshake on a listener without SASL this way.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	resp.SupportedMechanisms = slices.Clone(a.sasl.mechanisms)
	mech := req.Mechanism
	if a.done.Load() {
		if a.reauth {
			a.failed = true
			resp.ErrorCode = kerr.IllegalSaslState.Code
			return &closeAfterResponse{Response: resp}, nil
		}
		a.reauth = true
		if mech != a.mechanism && slices.Contains(a.sasl.mechanisms, mech) {
			// Kafka answers the handshake and fails the authentication
			// that follows: re-authentication must keep the mechanism.
			a.badReauth = fmt.Sprintf("SASL mechanism '%s' requested by client is not supported for re-authentication of mechanism '%s'",
				mech, a.mechanism)
			return resp, nil
		}
	} else if a.mechanism != "" {
		a.failed = true
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return &closeAfterResponse{Response: resp}, nil
	}
	if !slices.Contains(a.sasl.mechanisms, mech) {
		a.failed = true
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		s.authFailed(r, mech, "unsupported mechanism")
		return &closeAfterResponse{resp, s.cfg.failedAuthDelay()}, nil
	}
	a.mechanism = mech
	a.session = a.sasl.newSession(mech)
	return resp, nil
}

func (s *Server) handleSaslAuthenticate(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	a := r.auth
	if a == nil || a.sasl == nil || (a.done.Load() && !a.reauth) {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate request received after successful authentication"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	if a.badReauth != "" {
		a.failed = true
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = &a.badReauth
		s.authFailed(r, a.mechanism, "re-authentication with another mechanism")
		return &closeAfterResponse{resp, s.cfg.failedAuthDelay()}, nil
	}
	if a.session == nil {
		a.failed = true
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate request received before SaslHandshake"
		resp.ErrorMessage = &msg
		return &closeAfterResponse{Response: resp}, nil
	}
	out, done, err := a.session.step(req.SASLAuthBytes)
	if err == errOAuthRejected {
		resp.SASLAuthBytes = out
		return resp, nil
	}
	if err == nil && done && a.done.Load() && "User:"+a.session.principal() != a.principal {
		err = &saslError{msg: "Cannot change principals during re-authentication from User." +
			strings.TrimPrefix(a.principal, "User:") + ": User." + a.session.principal()}
	}
	if err != nil {
		a.failed = true
		var se *saslError
		msg, detail := "", err.Error()
		if errors.As(err, &se) {
			msg, detail = se.msg, se.detail
		}
		if msg == "" {
			phase := "authentication"
			if a.reauth {
				phase = "re-authentication"
			}
			msg = "Authentication failed during " + phase + " due to invalid credentials with SASL mechanism " + a.mechanism
		}
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = &msg
		s.authFailed(r, a.mechanism, detail)
		return &closeAfterResponse{resp, s.cfg.failedAuthDelay()}, nil
	}
	resp.SASLAuthBytes = out
	if !done {
		return resp, nil
	}
	now := time.Now()
	a.principal = "User:" + a.session.principal()
	a.expiry = time.Time{}
	a.reauth = false
	// KIP-368: the session ends after connections.max.reauth.ms or when
	// the credential (an OAuth token) expires, whichever is first; as in
	// Kafka, a token's expiry ends the session even when
	// connections.max.reauth.ms is not set.
	var end time.Time
	exp, maxReauth := a.session.expires(), a.sasl.reauth[a.mechanism]
	switch {
	case maxReauth > 0 && (exp.IsZero() || now.Add(maxReauth).Before(exp)):
		end = now.Add(maxReauth)
	case !exp.IsZero():
		end = exp
	}
	if !end.IsZero() {
		a.expiry = end
		if r.version >= 1 {
			resp.SessionLifetimeMillis = max(end.Sub(now).Milliseconds(), 0)
		}
	}
	a.session = nil
	a.done.Store(true)
	s.log.Debug().Str("remote", r.remote.String()).Str("principal", a.principal).Str("mechanism", a.mechanism).
		Time("session_end", a.expiry).Msg("sasl: authenticated")
	return resp, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// quoteUser quotes a client-supplied name for the log, cut short so that a
// hostile client cannot flood it.
func quoteUser(u string) string {
	if len(u) > 64 {
		u = u[:64] + "..."
	}
	return strconv.Quote(u)
}

func (sl *saslListener) newSession(mech string) saslSession {
	switch mech {
	case "PLAIN":
		return &plainSession{users: sl.plain}
	case "SCRAM-SHA-256":
		return newScramSession(sl.scram, scramSHA256)
	case "SCRAM-SHA-512":
		return newScramSession(sl.scram, scramSHA512)
	case "OAUTHBEARER":
		return &oauthSession{v: sl.oauth}
	}
	return nil
}

// authFailed counts and logs a failed authentication, at most once a
// second per broker, never with the credentials.
func (s *Server) authFailed(r *request, mech, detail string) {
	s.authFailures.Add(1)
	now := time.Now().UnixNano()
	last := s.authFailLogged.Load()
	if now-last < int64(time.Second) || !s.authFailLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn().Str("remote", r.remote.String()).Str("mechanism", mech).Str("client_id", r.clientID).
		Str("reason", detail).Int64("failures", s.authFailures.Load()).Msg("sasl: authentication failed")
}

// closeAfterResponse is returned (as the kmsg.Response) when the
// connection must close once the response is sent, as Kafka closes it
// after a failed authentication.
type closeAfterResponse struct {
	kmsg.Response
	// delay holds the response (and the close) back after a failed
	// authentication, as Kafka's connection.failed.authentication.delay.ms
	// does, so that guessing passwords is slow.
	delay time.Duration
}

func strPtr(s string) *string { return &s }
