package server

import (
	"bytes"
	"crypto/subtle"
	"time"
)

// SASL/PLAIN (RFC 4616) with users from the listener's JAAS config
// (user_<name>="<password>"), as Kafka's PlainServerCallbackHandler.

type plainSession struct {
	users map[string]string
	user  string
}

func (p *plainSession) step(in []byte) ([]byte, bool, error) {
	// authzid NUL authcid NUL passwd
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return nil, false, &saslError{msg: "Invalid SASL/PLAIN response: expected 3 tokens, got " + itoa(len(parts))}
	}
	authz, user, pass := string(parts[0]), string(parts[1]), parts[2]
	if user == "" {
		return nil, false, &saslError{msg: "Authentication failed: username not specified"}
	}
	if len(pass) == 0 {
		return nil, false, &saslError{msg: "Authentication failed: password not specified"}
	}
	want, known := p.users[user]
	// Compare even for unknown users so timing says nothing about them.
	if subtle.ConstantTimeCompare([]byte(want), pass) != 1 || !known {
		return nil, false, &saslError{msg: "Authentication failed: Invalid username or password", detail: "user " + quoteUser(user)}
	}
	if authz != "" && authz != user {
		return nil, false, &saslError{msg: "Authentication failed: Client requested an authorization id that is different from username"}
	}
	p.user = user
	return nil, true, nil
}

func (p *plainSession) principal() string  { return p.user }
func (p *plainSession) expires() time.Time { return time.Time{} }
