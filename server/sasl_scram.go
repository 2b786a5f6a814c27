package server

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, as
// Kafka's ScramSaslServer: an unknown user fails at the client's first
// message, channel binding is not supported, and an authorization id must
// equal the user name. Credentials are kept only as salt, iteration count,
// StoredKey and ServerKey (see scramStore).

type scramMechanism struct {
	name    string
	typ     int8 // Kafka's ScramMechanism type: 1 = SHA-256, 2 = SHA-512
	newHash func() hash.Hash
}

var (
	scramSHA256 = &scramMechanism{name: "SCRAM-SHA-256", typ: 1, newHash: sha256.New}
	scramSHA512 = &scramMechanism{name: "SCRAM-SHA-512", typ: 2, newHash: sha512.New}
)

func scramMechanismByType(t int8) *scramMechanism {
	switch t {
	case 1:
		return scramSHA256
	case 2:
		return scramSHA512
	}
	return nil
}

func scramMechanismByName(n string) *scramMechanism {
	switch strings.ToUpper(n) {
	case scramSHA256.name:
		return scramSHA256
	case scramSHA512.name:
		return scramSHA512
	}
	return nil
}

// Kafka's bounds on SCRAM iterations.
const (
	scramMinIterations     = 4096
	scramMaxIterations     = 16384
	scramDefaultIterations = 4096
)

// scramCredential is what the broker keeps of a SCRAM password.
type scramCredential struct {
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
	Iterations int32  `json:"iterations"`
}

func (m *scramMechanism) hmac(key []byte, msg string) []byte {
	h := hmac.New(m.newHash, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func (m *scramMechanism) hash(b []byte) []byte {
	h := m.newHash()
	h.Write(b)
	return h.Sum(nil)
}

// saltedPassword is RFC 5802's Hi(password, salt, i).
func (m *scramMechanism) saltedPassword(password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(m.newHash, password, salt, iterations, m.newHash().Size())
}

// credentialFromSalted derives the stored credential from a salted
// password (what AlterUserScramCredentials carries).
func (m *scramMechanism) credentialFromSalted(salted, salt []byte, iterations int32) scramCredential {
	clientKey := m.hmac(salted, "Client Key")
	return scramCredential{
		Salt:       salt,
		StoredKey:  m.hash(clientKey),
		ServerKey:  m.hmac(salted, "Server Key"),
		Iterations: iterations,
	}
}

// newCredential salts and hashes a password.
func (m *scramMechanism) newCredential(password string, iterations int) (scramCredential, error) {
	salt := make([]byte, 32)
	rand.Read(salt)
	salted, err := m.saltedPassword(password, salt, iterations)
	if err != nil {
		return scramCredential{}, fmt.Errorf("server: scram: %w", err)
	}
	return m.credentialFromSalted(salted, salt, int32(iterations)), nil
}

type scramState int

const (
	scramWantClientFirst scramState = iota
	scramWantClientFinal
	scramDone
)

type scramSession struct {
	store *scramStore
	mech  *scramMechanism
	state scramState

	user            string
	cred            scramCredential
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce
}

func newScramSession(store *scramStore, mech *scramMechanism) *scramSession {
	return &scramSession{store: store, mech: mech}
}

func (s *scramSession) principal() string  { return s.user }
func (s *scramSession) expires() time.Time { return time.Time{} }

func (s *scramSession) step(in []byte) ([]byte, bool, error) {
	switch s.state {
	case scramWantClientFirst:
		cf, err := parseScramClientFirst(string(in))
		if err != nil {
			return nil, false, &saslError{detail: err.Error()}
		}
		cred, ok := s.store.lookup(cf.user, s.mech)
		if !ok {
			return nil, false, &saslError{detail: "unknown user " + quoteUser(cf.user)}
		}
		if cf.authzid != "" && cf.authzid != cf.user {
			return nil, false, &saslError{msg: "Authentication failed: Client requested an authorization id that is different from username"}
		}
		if cred.Iterations < scramMinIterations {
			return nil, false, &saslError{detail: "iterations below the minimum"}
		}
		var snonce [18]byte
		rand.Read(snonce[:])
		s.user, s.cred = cf.user, cred
		s.gs2Header, s.clientFirstBare = cf.gs2Header, cf.bare
		s.nonce = cf.nonce + base64.RawURLEncoding.EncodeToString(snonce[:])
		s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) +
			",i=" + strconv.Itoa(int(cred.Iterations))
		s.state = scramWantClientFinal
		return []byte(s.serverFirst), false, nil
	case scramWantClientFinal:
		s.state = scramDone
		cf, err := parseScramClientFinal(string(in))
		if err != nil {
			return nil, false, &saslError{detail: err.Error()}
		}
		// Kafka accepts a final nonce that ends with the server's, and
		// librdkafka relies on it: it sends its own nonce again in front.
		if !strings.HasSuffix(cf.nonce, s.nonce) {
			return nil, false, &saslError{detail: "invalid client nonce in the final client message"}
		}
		if cf.channelBinding != base64.StdEncoding.EncodeToString([]byte(s.gs2Header)) {
			return nil, false, &saslError{detail: "invalid channel binding"}
		}
		authMessage := s.clientFirstBare + "," + s.serverFirst + "," + cf.withoutProof
		clientSig := s.mech.hmac(s.cred.StoredKey, authMessage)
		if len(cf.proof) != len(clientSig) {
			return nil, false, &saslError{detail: "invalid client proof for user " + quoteUser(s.user)}
		}
		clientKey := make([]byte, len(clientSig))
		subtle.XORBytes(clientKey, cf.proof, clientSig)
		if subtle.ConstantTimeCompare(s.mech.hash(clientKey), s.cred.StoredKey) != 1 {
			return nil, false, &saslError{detail: "invalid client proof for user " + quoteUser(s.user)}
		}
		serverSig := s.mech.hmac(s.cred.ServerKey, authMessage)
		return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), true, nil
	}
	return nil, false, &saslError{detail: "unexpected message after the exchange"}
}

type scramClientFirst struct {
	gs2Header, authzid, bare, user, nonce string
}

// parseScramClientFirst parses gs2-header client-first-message-bare:
//
//	n,[a=authzid],[m=ext,]n=user,r=nonce[,ext...]
func parseScramClientFirst(msg string) (scramClientFirst, error) {
	var cf scramClientFirst
	cb, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return cf, errors.New("scram: client-first message has no gs2 header")
	}
	switch cb {
	case "n", "y":
	default:
		return cf, errors.New("scram: channel binding is not supported")
	}
	az, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, errors.New("scram: client-first message has no gs2 header")
	}
	if az != "" {
		name, ok := strings.CutPrefix(az, "a=")
		if !ok {
			return cf, errors.New("scram: bad authzid")
		}
		var err error
		if cf.authzid, err = scramUnescape(name); err != nil {
			return cf, err
		}
	}
	cf.gs2Header = cb + "," + az + ","
	cf.bare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) > 0 && strings.HasPrefix(attrs[0], "m=") {
		return cf, errors.New("scram: mandatory extensions are not supported")
	}
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, errors.New("scram: client-first message must be n=user,r=nonce")
	}
	user, err := scramUnescape(attrs[0][2:])
	if err != nil {
		return cf, err
	}
	if user == "" {
		return cf, errors.New("scram: empty user name")
	}
	cf.user, cf.nonce = user, attrs[1][2:]
	if !validNonce(cf.nonce) {
		return cf, errors.New("scram: bad nonce")
	}
	for _, ext := range attrs[2:] {
		if len(ext) < 2 || ext[1] != '=' {
			return cf, errors.New("scram: bad extension")
		}
	}
	return cf, nil
}

type scramClientFinal struct {
	channelBinding, nonce, withoutProof string
	proof                               []byte
}

// parseScramClientFinal parses c=binding,r=nonce[,ext...],p=proof.
func parseScramClientFinal(msg string) (scramClientFinal, error) {
	var cf scramClientFinal
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, errors.New("scram: client-final message has no proof")
	}
	cf.withoutProof = msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil {
		return cf, errors.New("scram: proof is not base64")
	}
	cf.proof = proof
	attrs := strings.Split(cf.withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, errors.New("scram: client-final message must be c=binding,r=nonce,...,p=proof")
	}
	cf.channelBinding, cf.nonce = attrs[0][2:], attrs[1][2:]
	return cf, nil
}

// validNonce: printable ASCII without ',' (RFC 5802).
func validNonce(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 0x21 || n[i] > 0x7e || n[i] == ',' {
			return false
		}
	}
	return true
}

// scramUnescape decodes a saslname: "=2C" is ',' and "=3D" is '='.
func scramUnescape(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("scram: bad escape in name")
		}
		i += 2
	}
	return b.String(), nil
}
