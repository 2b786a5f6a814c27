package integration

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffmq/skiff/server"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Unsecured validation of OAuth tokens, which a listener must ask for.
const unsecuredOAuthValidator = "org.apache.kafka.common.security.oauthbearer.OAuthBearerUnsecuredValidatorCallbackHandler"

// securitySettings configures four listeners: PLAINTEXT for the test's own
// admin client, SSL requiring client certificates, SASL_PLAINTEXT with
// every mechanism, and SASL_SSL with SCRAM-SHA-512 and PLAIN.
func securitySettings(p *testPKI) map[string]string {
	return map[string]string{
		"listeners":                         "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
		"ssl.keystore.type":                 "PEM",
		"ssl.keystore.location":             p.serverFile,
		"ssl.truststore.type":               "PEM",
		"ssl.truststore.location":           p.caFile,
		"listener.name.ssl.ssl.client.auth": "required",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms":                        "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config":                         `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";`,
		"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": unsecuredOAuthValidator,
		"listener.name.sasl_ssl.sasl.enabled.mechanisms":                              "SCRAM-SHA-512,PLAIN,OAUTHBEARER",
		"listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class":       unsecuredOAuthValidator,
		"listener.name.sasl_ssl.plain.sasl.jaas.config":                               `org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";`,
		"group.initial.rebalance.delay.ms":                                            "0",
	}
}

// addScramUser gives user a password for both SCRAM mechanisms through
// AlterUserScramCredentials on the PLAINTEXT listener.
func addScramUser(t *testing.T, adm *kadm.Client, user, password string) {
	t.Helper()
	res, err := adm.AlterUserSCRAMs(testContext(t), nil, []kadm.UpsertSCRAM{
		{User: user, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: password},
	})
	if err != nil || res.Error() != nil {
		t.Fatalf("AlterUserSCRAMs %s 256: %v %v", user, err, res.Error())
	}
	res, err = adm.AlterUserSCRAMs(testContext(t), nil, []kadm.UpsertSCRAM{
		{User: user, Mechanism: kadm.ScramSha512, Iterations: 8192, Password: password},
	})
	if err != nil || res.Error() != nil {
		t.Fatalf("AlterUserSCRAMs %s 512: %v %v", user, err, res.Error())
	}
}

// roundTripRecord produces one record through cl and reads it back.
func roundTripRecord(t *testing.T, cl *kgo.Client, topic, value string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr(); err != nil {
		return err
	}
	cl.AddConsumeTopics(topic)
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consuming %s: %w", topic, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return errs[0].Err
		}
		for _, r := range fs.Records() {
			if string(r.Value) == value {
				return nil
			}
		}
	}
}

// authClient is a client of one listener with a SASL mechanism and/or TLS
// that fails fast instead of retrying authentication errors.
func authClient(t *testing.T, addr string, mech sasl.Mechanism, tlsCfg *tls.Config) *kgo.Client {
	opts := []kgo.Opt{kgo.RequestRetries(0), kgo.RetryTimeout(5 * time.Second), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	return newClient(t, addr, opts...)
}

// expectAuthFailed asserts that a client cannot read or write, and that
// its error is SASL_AUTHENTICATION_FAILED carrying want.
func expectAuthFailed(t *testing.T, cl *kgo.Client, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if !errors.Is(err, kerr.SaslAuthenticationFailed) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want SASL_AUTHENTICATION_FAILED with %q", err, want)
	}
}

func TestSecurityListeners(t *testing.T) {
	p := newTestPKI(t)
	b := startBroker(t, securitySettings(p))
	adm := newAdmin(t, b.ListenerAddr("PLAINTEXT"))
	createTopic(t, adm, "sec", 1, nil)
	addScramUser(t, adm, "bob", "bob-secret")
	saslAddr, saslSSLAddr, sslAddr := b.ListenerAddr("SASL_PLAINTEXT"), b.ListenerAddr("SASL_SSL"), b.ListenerAddr("SSL")

	t.Cleanup(func() {
		// Every refused client above was counted.
		if n := b.Stats().AuthFailures; n < 7 {
			t.Errorf("Stats().AuthFailures = %d after at least 7 refused clients", n)
		}
	})
	t.Run("plain", func(t *testing.T) {
		if err := roundTripRecord(t, authClient(t, saslAddr, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), nil), "sec", "plain"); err != nil {
			t.Fatal(err)
		}
		expectAuthFailed(t, authClient(t, saslAddr, plain.Auth{User: "alice", Pass: "wrong"}.AsMechanism(), nil),
			"Authentication failed: Invalid username or password")
		expectAuthFailed(t, authClient(t, saslAddr, plain.Auth{User: "mallory", Pass: "alice-secret"}.AsMechanism(), nil),
			"Authentication failed: Invalid username or password")
	})
	for _, m := range []struct {
		name string
		mech func(scram.Auth) sasl.Mechanism
	}{{"SCRAM-SHA-256", scram.Auth.AsSha256Mechanism}, {"SCRAM-SHA-512", scram.Auth.AsSha512Mechanism}} {
		t.Run(m.name, func(t *testing.T) {
			if err := roundTripRecord(t, authClient(t, saslAddr, m.mech(scram.Auth{User: "bob", Pass: "bob-secret"}), nil), "sec", m.name); err != nil {
				t.Fatal(err)
			}
			generic := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + m.name
			expectAuthFailed(t, authClient(t, saslAddr, m.mech(scram.Auth{User: "bob", Pass: "wrong"}), nil), generic)
			expectAuthFailed(t, authClient(t, saslAddr, m.mech(scram.Auth{User: "nobody", Pass: "bob-secret"}), nil), generic)
		})
	}
	t.Run("SASL_SSL SCRAM-SHA-512", func(t *testing.T) {
		cl := authClient(t, saslSSLAddr, scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism(), p.clientTLS(t, false))
		if err := roundTripRecord(t, cl, "sec", "sasl_ssl"); err != nil {
			t.Fatal(err)
		}
		// Metadata sent through SASL_SSL advertises the SASL_SSL listener.
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(testContext(t), cl)
		if err != nil || len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, fmt.Sprint(md.Brokers[0].Port)) != saslSSLAddr {
			t.Fatalf("metadata over SASL_SSL: %v %+v, want broker %s", err, md, saslSSLAddr)
		}
		// SCRAM-SHA-256 is not enabled on this listener.
		cl = authClient(t, saslSSLAddr, scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism(), p.clientTLS(t, false))
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(testContext(t), cl); !errors.Is(err, kerr.UnsupportedSaslMechanism) {
			t.Fatalf("SCRAM-SHA-256 on a SCRAM-SHA-512 listener: %v, want UNSUPPORTED_SASL_MECHANISM", err)
		}
	})
	t.Run("SSL client certificate", func(t *testing.T) {
		if err := roundTripRecord(t, authClient(t, sslAddr, nil, p.clientTLS(t, true)), "sec", "ssl"); err != nil {
			t.Fatal(err)
		}
		// ssl.client.auth=required: no certificate, no connection.
		c, err := tls.Dial("tcp", sslAddr, p.clientTLS(t, false))
		if err == nil {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Read(make([]byte, 1)) // TLS 1.3 reports the refusal on the first read
			c.Close()
		}
		if err == nil {
			t.Fatal("TLS without a client certificate was accepted")
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		cfg := p.clientTLS(t, false)
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		if c, err := tls.Dial("tcp", saslSSLAddr, cfg); err == nil {
			c.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
	t.Run("OAUTHBEARER unsecured", func(t *testing.T) {
		if err := roundTripRecord(t, authClient(t, saslAddr, unsecuredToken("carol", time.Now().Add(time.Hour)), nil), "sec", "oauth"); err != nil {
			t.Fatal(err)
		}
		expectAuthFailed(t, authClient(t, saslAddr, unsecuredToken("carol", time.Now().Add(-time.Minute)), nil), "invalid_token")
	})
}

func unsecuredToken(sub string, exp time.Time) sasl.Mechanism {
	enc := base64.RawURLEncoding.EncodeToString
	claims := fmt.Sprintf(`{"sub":%q,"exp":%d,"iat":%d}`, sub, exp.Unix(), time.Now().Unix())
	return oauth.Auth{Token: enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(claims)) + "."}.AsMechanism()
}

// TestSASLOnlyHandshakeBeforeAuthentication: before authenticating, a
// client gets ApiVersions and the SASL APIs; any other request closes the
// connection and is not served.
func TestSASLOnlyHandshakeBeforeAuthentication(t *testing.T) {
	b := startBroker(t, securitySettings(newTestPKI(t)))
	addr := b.ListenerAddr("SASL_PLAINTEXT")

	c := dialRaw(t, addr)
	if resp := roundTrip(t, c, kmsg.NewPtrApiVersionsRequest(), 1).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions before authentication: error %d", resp.ErrorCode)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 9
	sendRaw(t, c, encodeRequest(md, 2))
	expectClosed(t, c)

	// A failed authentication answers SASL_AUTHENTICATION_FAILED with
	// Kafka's message, then closes.
	c = dialRaw(t, addr)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if resp := roundTrip(t, c, hs, 1).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("handshake: error %d", resp.ErrorCode)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 2, []byte("\x00alice\x00nope")
	sent := time.Now()
	resp := roundTrip(t, c, au, 2).(*kmsg.SASLAuthenticateResponse)
	// connection.failed.authentication.delay.ms (100 ms) holds it back.
	if d := time.Since(sent); d < 100*time.Millisecond {
		t.Errorf("failed authentication answered after %v, before the 100 ms delay", d)
	}
	if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil ||
		*resp.ErrorMessage != "Authentication failed: Invalid username or password" {
		t.Fatalf("wrong password: error %d %v", resp.ErrorCode, resp.ErrorMessage)
	}
	expectClosed(t, c)

	// An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled
	// ones, then closed.
	c = dialRaw(t, addr)
	hs.Mechanism = "GSSAPI"
	hsResp := roundTrip(t, c, hs, 1).(*kmsg.SASLHandshakeResponse)
	if hsResp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(hsResp.SupportedMechanisms, ",") != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER" {
		t.Fatalf("GSSAPI handshake: %+v", hsResp)
	}
	expectClosed(t, c)

	// On a listener without SASL, Kafka answers the SASL APIs with
	// ILLEGAL_SASL_STATE and goes on serving.
	c = dialRaw(t, b.ListenerAddr("PLAINTEXT"))
	hs.Mechanism = "PLAIN"
	if resp := roundTrip(t, c, hs, 1).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("handshake on PLAINTEXT: error %d, want ILLEGAL_SASL_STATE", resp.ErrorCode)
	}
	if resp := roundTrip(t, c, au, 2).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("authenticate on PLAINTEXT: error %d, want ILLEGAL_SASL_STATE", resp.ErrorCode)
	}
	roundTrip(t, c, md, 3)

	// A large frame before authentication is refused
	// (sasl.server.max.receive.size, 512 KiB).
	c = dialRaw(t, addr)
	au.SASLAuthBytes = make([]byte, 600<<10)
	sendRaw(t, c, encodeRequest(au, 3))
	expectClosed(t, c)
}

// TestSASLSessionExpiresWithoutReauthentication: with
// connections.max.reauth.ms, SaslAuthenticate v1+ gives the session
// lifetime, a client that re-authenticates carries on (franz-go does it by
// itself), and one that does not is disconnected at its next request.
func TestSASLSessionExpiresWithoutReauthentication(t *testing.T) {
	settings := securitySettings(newTestPKI(t))
	settings["listener.name.sasl_plaintext.connections.max.reauth.ms"] = "300"
	b := startBroker(t, settings)
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	createTopic(t, newAdmin(t, b.ListenerAddr("PLAINTEXT")), "reauth", 1, nil)

	c := dialRaw(t, addr)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	roundTrip(t, c, hs, 1)
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, []byte("\x00alice\x00alice-secret")
	resp := roundTrip(t, c, au, 2).(*kmsg.SASLAuthenticateResponse)
	if resp.ErrorCode != 0 || resp.SessionLifetimeMillis <= 0 || resp.SessionLifetimeMillis > 300 {
		t.Fatalf("authenticate: error %d, session lifetime %d ms, want (0, 300]", resp.ErrorCode, resp.SessionLifetimeMillis)
	}
	authed := time.Now()
	// Requests are served until the session ends; the first one after
	// that closes the connection.
	for corr := int32(3); ; corr++ {
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 9
		sendRaw(t, c, encodeRequest(md, corr))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			if since := time.Since(authed); since < 300*time.Millisecond {
				t.Fatalf("closed %v after authenticating, before the 300 ms session ended: %v", since, err)
			}
			break
		}
		if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(size[:]))); err != nil {
			t.Fatal(err)
		}
		if time.Since(authed) > 10*time.Second {
			t.Fatal("the connection is still served 10 s after its 300 ms session")
		}
	}

	// franz-go re-authenticates before the lifetime ends and keeps working.
	cl := authClient(t, addr, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), nil)
	start := time.Now()
	for i := 0; time.Since(start) < 1500*time.Millisecond; i++ {
		if err := roundTripRecord(t, cl, "reauth", fmt.Sprint("r", i)); err != nil {
			t.Fatalf("round %d, %v after start: %v", i, time.Since(start), err)
		}
	}
}

// TestScramCredentialsPersistHashed: credentials made with
// AlterUserScramCredentials survive a restart, are described with their
// iterations, and are stored without the password.
func TestScramCredentialsPersistHashed(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	b := startBroker(t, securitySettings(p), dir)
	adm := newAdmin(t, b.ListenerAddr("PLAINTEXT"))
	addScramUser(t, adm, "dave", "dave-very-secret")
	desc, err := adm.DescribeUserSCRAMs(testContext(t), "dave", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if d := desc["dave"]; d.Err != nil || len(d.CredInfos) != 2 || d.CredInfos[1].Iterations != 8192 {
		t.Fatalf("describe dave: %+v", d)
	}
	if d := desc["nobody"]; !errors.Is(d.Err, kerr.ResourceNotFound) {
		t.Fatalf("describe nobody: %+v, want RESOURCE_NOT_FOUND", d)
	}
	// Kafka's validation: too few iterations.
	// Kafka's validation: too few iterations (kadm refuses to send that,
	// so the request is built by hand).
	alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "eve", 1, 100, []byte("salt"), make([]byte, 32)
	alter.Upsertions = append(alter.Upsertions, up)
	ares, err := alter.RequestWith(testContext(t), newClient(t, b.ListenerAddr("PLAINTEXT")))
	if err != nil || len(ares.Results) != 1 || ares.Results[0].ErrorCode != kerr.UnacceptableCredential.Code ||
		ares.Results[0].ErrorMessage == nil || *ares.Results[0].ErrorMessage != "Too few iterations" {
		t.Fatalf("100 iterations: %v %+v, want UNACCEPTABLE_CREDENTIAL Too few iterations", err, ares)
	}
	b.Close()

	data, err := os.ReadFile(filepath.Join(dir, "scram-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "dave-very-secret") || strings.Contains(string(data), base64.StdEncoding.EncodeToString([]byte("dave-very-secret"))) {
		t.Fatalf("the credentials file holds the password:\n%s", data)
	}
	b = startBroker(t, securitySettings(p), dir)
	cl := authClient(t, b.ListenerAddr("SASL_PLAINTEXT"), scram.Auth{User: "dave", Pass: "dave-very-secret"}.AsSha512Mechanism(), nil)
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(testContext(t), cl); err != nil {
		t.Fatalf("SCRAM after restart: %v", err)
	}
	// Deleted credentials no longer authenticate.
	adm = newAdmin(t, b.ListenerAddr("PLAINTEXT"))
	if res, err := adm.AlterUserSCRAMs(testContext(t), []kadm.DeleteSCRAM{{User: "dave", Mechanism: kadm.ScramSha512}}, nil); err != nil || res.Error() != nil {
		t.Fatalf("delete: %v %v", err, res.Error())
	}
	expectAuthFailed(t, authClient(t, b.ListenerAddr("SASL_PLAINTEXT"), scram.Auth{User: "dave", Pass: "dave-very-secret"}.AsSha512Mechanism(), nil),
		"invalid credentials with SASL mechanism SCRAM-SHA-512")
}

// TestTLSCertificateReloadedWithoutRestart: a rewritten keystore file is
// served to new connections.
func TestTLSCertificateReloadedWithoutRestart(t *testing.T) {
	p := newTestPKI(t)
	b := startBroker(t, securitySettings(p))
	addr := b.ListenerAddr("SASL_SSL")
	serial := func() int64 {
		c, err := tls.Dial("tcp", addr, p.clientTLS(t, false))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 2 {
		t.Fatalf("serial %d, want 2", s)
	}
	certPEM, keyPEM := p.issue(t, pkixLocalhost(), 42, true)
	tmp := p.serverFile + ".new"
	if err := os.WriteFile(tmp, append(keyPEM, certPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.serverFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the new certificate to be served", func() bool { return serial() == 42 })
}

// TestScramUserBootstrappedAtStart: Config.ScramUsers (skiff --scram-user)
// makes a user that can authenticate with the mechanism given, and only it.
func TestScramUserBootstrappedAtStart(t *testing.T) {
	srv, err := server.New(server.Config{
		DataDir:    t.TempDir(),
		ScramUsers: []string{"frank:frank-secret:SCRAM-SHA-512"},
		Settings: map[string]string{
			"listeners":               "SASL_PLAINTEXT://127.0.0.1:0",
			"sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cl := authClient(t, srv.Addr(), scram.Auth{User: "frank", Pass: "frank-secret"}.AsSha512Mechanism(), nil)
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(testContext(t), cl); err != nil {
		t.Fatalf("SCRAM-SHA-512: %v", err)
	}
	expectAuthFailed(t, authClient(t, srv.Addr(), scram.Auth{User: "frank", Pass: "frank-secret"}.AsSha256Mechanism(), nil),
		"invalid credentials with SASL mechanism SCRAM-SHA-256")
}

// TestHostileHalfTLSHandshakesAndSASLGarbage: clients that stop halfway
// through a TLS handshake are dropped after connections.max.idle.ms, and
// SASL exchanges of garbage fail; meanwhile an authenticated client is
// served.
func TestHostileHalfTLSHandshakesAndSASLGarbage(t *testing.T) {
	p := newTestPKI(t)
	settings := securitySettings(p)
	settings["connections.max.idle.ms"] = "500"
	b := startBroker(t, settings)
	adm := newAdmin(t, b.ListenerAddr("PLAINTEXT"))
	createTopic(t, adm, "hostile-sec", 1, nil)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	before := fds()

	const half = 100
	var conns []net.Conn
	for range half {
		c := dialRaw(t, b.ListenerAddr("SASL_SSL"))
		// The first bytes of a ClientHello record, and nothing more.
		sendRaw(t, c, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01})
		conns = append(conns, c)
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"} {
		for i, garbage := range [][]byte{nil, {0}, []byte("n,,"), []byte("\x01\x01\x01"), bytes.Repeat([]byte{0xff}, 1000), []byte("n,,n=,r=")} {
			c := dialRaw(t, b.ListenerAddr("SASL_PLAINTEXT"))
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = 1, mech
			roundTrip(t, c, hs, 1)
			au := kmsg.NewPtrSASLAuthenticateRequest()
			au.Version, au.SASLAuthBytes = 2, garbage
			resp := roundTrip(t, c, au, 2).(*kmsg.SASLAuthenticateResponse)
			if resp.ErrorCode == 0 && mech == "OAUTHBEARER" {
				// The server's error challenge: the client answers 0x01
				// and is refused.
				au.SASLAuthBytes = []byte{1}
				resp = roundTrip(t, c, au, 3).(*kmsg.SASLAuthenticateResponse)
			}
			if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Fatalf("%s garbage %d: error %d, want SASL_AUTHENTICATION_FAILED", mech, i, resp.ErrorCode)
			}
			expectClosed(t, c)
			c.Close()
		}
	}
	cl := authClient(t, b.ListenerAddr("SASL_SSL"), plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), p.clientTLS(t, false))
	if err := roundTripRecord(t, cl, "hostile-sec", "still-served"); err != nil {
		t.Fatal(err)
	}
	// The stalled handshakes are closed by the broker.
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a stalled handshake got an answer")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("a stalled TLS handshake is still open after 10 s (idle timeout 500 ms)")
		}
		c.Close()
	}
	// Allow for the client above: its sockets and the broker's ends.
	last := 0
	eventually(t, 10*time.Second, "descriptors to return near their count before the flood", func() bool {
		last = fds()
		return last <= before+20
	})
	t.Logf("descriptors: %d before, %d after %d stalled handshakes and %d garbage exchanges", before, last, half, 4*6)
}

// TestSASLReauthenticationKeepsPrincipalAndMechanism: re-authenticating
// on a connection works with the same user and mechanism, and fails with
// Kafka's messages for another user or another mechanism.
func TestSASLReauthenticationKeepsPrincipalAndMechanism(t *testing.T) {
	settings := securitySettings(newTestPKI(t))
	settings["listener.name.sasl_plaintext.connections.max.reauth.ms"] = "60000"
	b := startBroker(t, settings)
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	auth := func(c net.Conn, corr int32, mech string, msg []byte) *kmsg.SASLAuthenticateResponse {
		t.Helper()
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, mech
		if resp := roundTrip(t, c, hs, corr).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
			t.Fatalf("handshake %s: error %d", mech, resp.ErrorCode)
		}
		au := kmsg.NewPtrSASLAuthenticateRequest()
		au.Version, au.SASLAuthBytes = 2, msg
		return roundTrip(t, c, au, corr+1).(*kmsg.SASLAuthenticateResponse)
	}
	for _, tc := range []struct {
		name, mech string
		again      []byte
		want       string // "" for success
	}{
		{"same user", "PLAIN", []byte("\x00alice\x00alice-secret"), ""},
		{"another user", "PLAIN", []byte("\x00admin\x00admin-secret"), "Cannot change principals during re-authentication from User.alice: User.admin"},
		{"another mechanism", "SCRAM-SHA-256", []byte("n,,n=alice,r=abc"),
			"SASL mechanism 'SCRAM-SHA-256' requested by client is not supported for re-authentication of mechanism 'PLAIN'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			if resp := auth(c, 1, "PLAIN", []byte("\x00alice\x00alice-secret")); resp.ErrorCode != 0 || resp.SessionLifetimeMillis <= 0 {
				t.Fatalf("first authentication: %+v", resp)
			}
			resp := auth(c, 3, tc.mech, tc.again)
			if tc.want == "" {
				md := kmsg.NewPtrMetadataRequest()
				md.Version = 9
				if resp.ErrorCode != 0 || resp.SessionLifetimeMillis <= 0 {
					t.Fatalf("re-authentication: %+v", resp)
				}
				roundTrip(t, c, md, 5)
				return
			}
			if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil || *resp.ErrorMessage != tc.want {
				t.Fatalf("got error %d %v, want SASL_AUTHENTICATION_FAILED %q", resp.ErrorCode, resp.ErrorMessage, tc.want)
			}
			expectClosed(t, c)
		})
	}
}

// TestOAuthBearerJWTFromJWKSFile: a listener validating JWTs against a
// JWKS file (KIP-768 settings with a file: URL) accepts a signed token,
// and refuses an expired one, one for another audience and an unsecured
// one with invalid_token and no data.
func TestOAuthBearerJWTFromJWKSFile(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":%q,"e":%q}]}`,
		enc(key.N.Bytes()), enc(big.NewInt(int64(key.E)).Bytes()))
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, []byte(jwks), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, map[string]string{
		"listeners":                          "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		"sasl.enabled.mechanisms":            "OAUTHBEARER",
		"sasl.oauthbearer.jwks.endpoint.url": "file://" + path,
		"sasl.oauthbearer.expected.audience": "skiff",
		"sasl.oauthbearer.expected.issuer":   "https://idp.test",
	})
	createTopic(t, newAdmin(t, b.ListenerAddr("PLAINTEXT")), "jwt", 1, nil)
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	token := func(aud string, exp time.Time) sasl.Mechanism {
		signed := enc([]byte(`{"alg":"RS256","kid":"k1","typ":"JWT"}`)) + "." +
			enc([]byte(fmt.Sprintf(`{"sub":"svc","iss":"https://idp.test","aud":%q,"exp":%d}`, aud, exp.Unix())))
		d := sha256.Sum256([]byte(signed))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return oauth.Auth{Token: signed + "." + enc(sig)}.AsMechanism()
	}
	if err := roundTripRecord(t, authClient(t, addr, token("skiff", time.Now().Add(time.Hour)), nil), "jwt", "signed"); err != nil {
		t.Fatal(err)
	}
	expectAuthFailed(t, authClient(t, addr, token("skiff", time.Now().Add(-time.Hour)), nil), "invalid_token")
	expectAuthFailed(t, authClient(t, addr, token("other", time.Now().Add(time.Hour)), nil), "invalid_token")
	expectAuthFailed(t, authClient(t, addr, unsecuredToken("svc", time.Now().Add(time.Hour)), nil), "invalid_token")
}

// TestOAuthTokenExpiryEndsSession: as in Kafka, an OAuth token's expiry
// ends the session even without connections.max.reauth.ms: the client is
// told the lifetime, and is disconnected if it then sends anything but a
// re-authentication.
func TestOAuthTokenExpiryEndsSession(t *testing.T) {
	b := startBroker(t, securitySettings(newTestPKI(t)))
	c := dialRaw(t, b.ListenerAddr("SASL_PLAINTEXT"))
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "OAUTHBEARER"
	roundTrip(t, c, hs, 1)
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"carol","exp":%d}`, exp.Unix()))) + "."
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, []byte("n,,\x01auth=Bearer "+tok+"\x01\x01")
	resp := roundTrip(t, c, au, 2).(*kmsg.SASLAuthenticateResponse)
	if resp.ErrorCode != 0 || resp.SessionLifetimeMillis <= 0 || resp.SessionLifetimeMillis > 2000 {
		t.Fatalf("authenticate: error %d, session lifetime %d ms, want (0, 2000]", resp.ErrorCode, resp.SessionLifetimeMillis)
	}
	for corr := int32(3); ; corr++ {
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 9
		sendRaw(t, c, encodeRequest(md, corr))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			if time.Now().Before(exp) {
				t.Fatalf("closed before the token expired: %v", err)
			}
			return
		}
		if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(size[:]))); err != nil {
			t.Fatal(err)
		}
		if time.Since(exp) > 10*time.Second {
			t.Fatal("still served 10 s after the token expired")
		}
	}
}

// TestMetricsCountAuthenticationFailures: each refused SASL client moves
// skiff_authentication_failures_total by one, and a good one does not.
func TestMetricsCountAuthenticationFailures(t *testing.T) {
	settings := securitySettings(newTestPKI(t))
	maps.Copy(settings, metricsSettings())
	b := startBroker(t, settings)
	saslAddr := b.ListenerAddr("SASL_PLAINTEXT")
	failures := func() float64 {
		return metricValue(scrape(t, b.HTTPAddr()), "skiff_authentication_failures_total", nil)
	}
	if got := failures(); got != 0 {
		t.Fatalf("skiff_authentication_failures_total = %v before any client, want 0", got)
	}
	createTopic(t, newAdmin(t, b.ListenerAddr("PLAINTEXT")), "authcount", 1, nil)
	if err := roundTripRecord(t, authClient(t, saslAddr, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), nil), "authcount", "ok"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		expectAuthFailed(t, authClient(t, saslAddr, plain.Auth{User: "alice", Pass: "wrong"}.AsMechanism(), nil),
			"Authentication failed: Invalid username or password")
	}
	if got := failures(); got != 3 {
		t.Fatalf("skiff_authentication_failures_total = %v after 3 refused clients and 1 accepted, want 3", got)
	}
}
