package server

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Security settings of listeners: Kafka's ssl.* and sasl.* broker configs,
// each of which may be given for one listener as
// listener.name.<listener>.<config> (the listener name in lower case), and
// the per-mechanism forms listener.name.<listener>.<mechanism>.<config>
// for sasl.jaas.config and sasl.server.callback.handler.class.
//
// These settings are kept out of brokerConfigDefs on purpose: that table
// feeds DescribeConfigs, and keys and JAAS passwords must never be echoed
// to clients.

// securityConfigNames are the ssl.* and sasl.* configs Skiff reads. A value
// of nil accepts any value; otherwise the function checks it.
var securityConfigNames = map[string]func(string) error{
	"ssl.keystore.type":                         oneOfFold("PEM", "JKS", "PKCS12"),
	"ssl.keystore.location":                     nil,
	"ssl.keystore.password":                     nil,
	"ssl.key.password":                          nil,
	"ssl.keystore.certificate.chain":            nil,
	"ssl.keystore.key":                          nil,
	"ssl.truststore.type":                       oneOfFold("PEM", "JKS", "PKCS12"),
	"ssl.truststore.location":                   nil,
	"ssl.truststore.password":                   nil,
	"ssl.truststore.certificates":               nil,
	"ssl.client.auth":                           oneOfFold("required", "requested", "none"),
	"ssl.principal.mapping.rules":               func(v string) error { _, err := parsePrincipalRules(v); return err },
	"ssl.enabled.protocols":                     checkTLSProtocols,
	"ssl.protocol":                              nil, // the JSSE context name; Go negotiates by ssl.enabled.protocols
	"ssl.endpoint.identification.algorithm":     nil, // client side only
	"ssl.cipher.suites":                         nil, // Go's secure defaults are used
	"ssl.keymanager.algorithm":                  nil,
	"ssl.trustmanager.algorithm":                nil,
	"ssl.secure.random.implementation":          nil,
	"sasl.enabled.mechanisms":                   checkMechanisms,
	"sasl.mechanism.inter.broker.protocol":      nil, // no inter-broker traffic yet
	"sasl.server.callback.handler.class":        nil,
	"sasl.jaas.config":                          nil,
	"sasl.server.max.receive.size":              intRange(1, 1<<31-1),
	"connections.max.reauth.ms":                 func(v string) error { return checkType(typeLong, v) },
	"connection.failed.authentication.delay.ms": intRange(0, 1<<31-1),
	"sasl.oauthbearer.jwks.endpoint.url":        checkJWKSURL,
	"sasl.oauthbearer.jwks.endpoint.refresh.ms": func(v string) error {
		return checkType(typeLong, v)
	},
	"sasl.oauthbearer.expected.audience":                  nil,
	"sasl.oauthbearer.expected.issuer":                    nil,
	"sasl.oauthbearer.clock.skew.seconds":                 intRange(0, 1<<31-1),
	"sasl.oauthbearer.sub.claim.name":                     nil,
	"sasl.oauthbearer.scope.claim.name":                   nil,
	"sasl.oauthbearer.jwks.endpoint.retry.backoff.ms":     nil,
	"sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": nil,
}

// perMechanismConfigs may also be prefixed by a lower-case mechanism name
// after the listener prefix (Kafka's listener.name.l.plain.sasl.jaas.config).
var perMechanismConfigs = []string{"sasl.jaas.config", "sasl.server.callback.handler.class", "connections.max.reauth.ms"}

// Kafka's class names that select the OAUTHBEARER validators.
const (
	unsecuredValidatorClass = "org.apache.kafka.common.security.oauthbearer.OAuthBearerUnsecuredValidatorCallbackHandler"
	jwtValidatorClass       = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
	jwtValidatorClassOld    = "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler"
)

// validateSecuritySetting reports whether name is a security setting (so
// validateSetting need look no further) and whether its value is valid.
func validateSecuritySetting(name, v string) (bool, error) {
	base := name
	if rest, ok := strings.CutPrefix(name, "listener.name."); ok {
		_, cfg, ok := strings.Cut(rest, ".")
		if !ok {
			return false, nil
		}
		base = cfg
		if mech, cfg2, ok := strings.Cut(cfg, "."); ok && slices.Contains(perMechanismConfigs, cfg2) &&
			slices.Contains(supportedMechanisms, strings.ToUpper(mech)) {
			base = cfg2
		}
	}
	check, ok := securityConfigNames[base]
	if !ok {
		return false, nil
	}
	if check != nil {
		if err := check(v); err != nil {
			return true, fmt.Errorf("server: invalid value for %s: %w", name, err)
		}
	}
	return true, nil
}

// listenerSecurity is what a listener requires of the clients that connect
// to it: TLS (SSL, SASL_SSL) and SASL (SASL_PLAINTEXT, SASL_SSL).
type listenerSecurity struct {
	protocol string // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	tls      *tlsSource
	sasl     *saslListener
	// principalRules map a client certificate's subject to a principal
	// name (ssl.principal.mapping.rules).
	principalRules []principalRule
}

// securityLookup finds a listener's value of a security setting: the
// listener.name.<l>. form first, then the broker-wide one.
type securityLookup struct {
	settings map[string]string
	listener string // lower case
}

func (s securityLookup) get(name string) (string, bool) {
	if v, ok := s.settings["listener.name."+s.listener+"."+name]; ok {
		return strings.TrimSpace(v), true
	}
	v, ok := s.settings[name]
	return strings.TrimSpace(v), ok
}

// getMech finds a per-mechanism setting: listener.name.<l>.<mech>.<name>,
// then the listener-wide and broker-wide forms.
func (s securityLookup) getMech(mech, name string) (string, bool) {
	if v, ok := s.settings["listener.name."+s.listener+"."+strings.ToLower(mech)+"."+name]; ok {
		return strings.TrimSpace(v), true
	}
	return s.get(name)
}

// parseListenerSecurity builds a listener's TLS and SASL setup from the
// settings. Files named by the settings are read here, so a broker with a
// missing key or CA fails to start rather than at the first handshake.
func (c *Config) parseListenerSecurity(l *listenerSpec) error {
	if l.protocol == "PLAINTEXT" {
		return nil // asks nothing of clients
	}
	look := securityLookup{settings: c.Settings, listener: strings.ToLower(l.name)}
	sec := &listenerSecurity{protocol: l.protocol}
	if sec.protocol == "SSL" || sec.protocol == "SASL_SSL" {
		src, err := newTLSSource(look, c.Logger)
		if err != nil {
			return fmt.Errorf("server: listener %s: %w", l.name, err)
		}
		sec.tls = src
		rules, _ := look.get("ssl.principal.mapping.rules")
		if sec.principalRules, err = parsePrincipalRules(rules); err != nil {
			return fmt.Errorf("server: listener %s: ssl.principal.mapping.rules: %w", l.name, err)
		}
	}
	if sec.protocol == "SASL_PLAINTEXT" || sec.protocol == "SASL_SSL" {
		sl, err := newSASLListener(look, c)
		if err != nil {
			return fmt.Errorf("server: listener %s: %w", l.name, err)
		}
		sec.sasl = sl
	}
	l.security = sec
	return nil
}

func oneOfFold(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if strings.EqualFold(v, a) {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func checkTLSProtocols(v string) error {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "TLSv1.2", "TLSv1.3":
		case "":
		default:
			return fmt.Errorf("%q: only TLSv1.2 and TLSv1.3 are supported", strings.TrimSpace(p))
		}
	}
	return nil
}

func checkMechanisms(v string) error {
	for _, m := range strings.Split(v, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m != "" && !slices.Contains(supportedMechanisms, m) {
			return fmt.Errorf("mechanism %q is not supported (Skiff supports %s)", m, strings.Join(supportedMechanisms, ", "))
		}
	}
	return nil
}

func checkJWKSURL(v string) error {
	if v == "" || strings.HasPrefix(v, "file:") || strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://") {
		return nil
	}
	return fmt.Errorf("%q is not a file:, http:// or https:// URL", v)
}

// durationMs parses a validated long setting as milliseconds.
func durationMs(v string) time.Duration {
	n, _ := strconv.ParseInt(v, 10, 64)
	return time.Duration(n) * time.Millisecond
}

// failedAuthDelay is connection.failed.authentication.delay.ms (Kafka's
// default, 100 ms): how long a failed authentication's answer and close
// are held back.
func (c *Config) failedAuthDelay() time.Duration {
	if v, ok := c.Settings["connection.failed.authentication.delay.ms"]; ok {
		return durationMs(strings.TrimSpace(v))
	}
	return 100 * time.Millisecond
}
