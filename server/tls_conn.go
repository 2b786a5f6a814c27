package server

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// tlsHandshakeTimeout bounds a TLS handshake (or connections.max.idle.ms
// when shorter), so that a client that stops halfway holds its goroutine
// and descriptor only this long.
const tlsHandshakeTimeout = 10 * time.Second

// connIdentity is what a connection's listener and TLS handshake say about
// the client before any request.
type connIdentity struct {
	sasl      *saslListener // nil: no SASL, the client is authenticated
	principal string
}

// secureConn does a TLS listener's handshake and finds the client's
// principal: from its certificate (ssl.principal.mapping.rules) on SSL,
// ANONYMOUS without one, and left to SASL on SASL listeners. It returns
// the connection to serve, or ok false when it must be closed.
func (s *Server) secureConn(nc net.Conn, l *listenerSpec) (connIdentity, net.Conn, bool) {
	id := connIdentity{principal: "User:ANONYMOUS"}
	sec := l.security
	if sec == nil {
		return id, nc, true
	}
	id.sasl = sec.sasl
	if sec.tls == nil {
		return id, nc, true
	}
	tc := tls.Server(nc, sec.tls.config())
	timeout := tlsHandshakeTimeout
	if idle := s.cfg.connectionsMaxIdle; idle > 0 && idle < timeout {
		timeout = idle // a stalled handshake is an idle connection
	}
	ctx, cancel := context.WithTimeout(s.quitCtx, timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// Scanners and clients that speak plaintext to a TLS port end up
		// here: one debug line, not a warning each.
		s.log.Debug().Err(err).Str("remote", nc.RemoteAddr().String()).Str("listener", l.name).Msg("tls: handshake failed")
		nc.Close()
		return id, nil, false
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 && sec.sasl == nil {
		dn := certSubject(certs[0])
		name, ok := mapPrincipal(sec.principalRules, dn)
		if !ok {
			s.log.Warn().Str("remote", nc.RemoteAddr().String()).Str("subject", dn).
				Msg("tls: no ssl.principal.mapping.rules rule matches the client certificate; closing")
			tc.Close()
			return id, nil, false
		}
		id.principal = "User:" + name
		s.log.Debug().Str("remote", nc.RemoteAddr().String()).Str("subject", dn).Str("principal", id.principal).
			Msg("tls: client certificate accepted")
	}
	return id, tc, true
}
