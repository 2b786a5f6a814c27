package server

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// listenerSpec is one of Kafka's named listeners: where the broker accepts
// connections and the address it advertises to clients that came in
// through it. Kafka users run an INTERNAL listener for clients on the
// container network and an EXTERNAL one for the host, each advertising the
// address that is reachable from where its clients are.
type listenerSpec struct {
	name       string // upper case, as Kafka normalises listener names
	host, port string // bind address; port "0" picks one at Start
	// advertHost is empty until Start when nothing was advertised: the
	// bound address is advertised then.
	advertHost string
	advertPort int32
	boundPort  int // set by Start
	// protocol is the listener's security protocol and security what it
	// asks of clients (see security_config.go).
	protocol string
	security *listenerSecurity
}

// parseListeners resolves the listeners, advertised.listeners and
// listener.security.protocol.map settings, or Listen and Advertise when
// listeners is not set, into c.listeners, and mirrors the first listener in
// Listen, Advertise and the fields derived from them.
func (c *Config) parseListeners(set func(string) (string, bool)) error {
	var specs []listenerSpec
	if v, ok := set("listeners"); ok {
		skip := map[string]bool{}
		if names, ok := set("controller.listener.names"); ok {
			// A KRaft controller listener has no meaning for Skiff.
			for _, n := range strings.Split(names, ",") {
				skip[strings.ToUpper(strings.TrimSpace(n))] = true
			}
		}
		all, err := parseListenerList(v)
		if err != nil {
			return fmt.Errorf("server: listeners: %w", err)
		}
		for _, l := range all {
			if !skip[l.name] {
				specs = append(specs, l)
			}
		}
		if len(specs) == 0 {
			return fmt.Errorf("server: listeners: no listener for clients in %q", v)
		}
	} else {
		if c.Listen == "" {
			c.Listen = DefaultListen
		}
		host, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return fmt.Errorf("server: listen address %q: %w", c.Listen, err)
		}
		specs = []listenerSpec{{name: "PLAINTEXT", host: host, port: port}}
	}
	ports := map[string]string{}
	for _, l := range specs {
		if other, dup := ports[l.port]; dup && l.port != "0" {
			return fmt.Errorf("server: listeners %s and %s use the same port %s", other, l.name, l.port)
		}
		ports[l.port] = l.name
	}

	protoMap := defaultSecurityProtocolMap
	if v, ok := set("listener.security.protocol.map"); ok && v != "" {
		protoMap = v
	}
	protocols := map[string]string{}
	for _, item := range strings.Split(protoMap, ",") {
		name, proto, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || name == "" {
			return fmt.Errorf("server: listener.security.protocol.map: %q is not NAME:PROTOCOL", item)
		}
		protocols[strings.ToUpper(strings.TrimSpace(name))] = strings.ToUpper(strings.TrimSpace(proto))
	}
	for i := range specs {
		l := &specs[i]
		proto, ok := protocols[l.name]
		if !ok {
			return fmt.Errorf("server: listener %s has no security protocol in listener.security.protocol.map", l.name)
		}
		switch proto {
		case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
		default:
			return fmt.Errorf("server: listener %s uses unknown security protocol %s", l.name, proto)
		}
		l.protocol = proto
		if err := c.parseListenerSecurity(l); err != nil {
			return err
		}
	}

	if v, ok := set("advertised.listeners"); ok && v != "" {
		adv, err := parseListenerList(v)
		if err != nil {
			return fmt.Errorf("server: advertised.listeners: %w", err)
		}
		for _, a := range adv {
			i := indexListener(specs, a.name)
			if i < 0 {
				return fmt.Errorf("server: advertised.listeners names %s, which is not in listeners", a.name)
			}
			if err := specs[i].setAdvertised(net.JoinHostPort(a.host, a.port)); err != nil {
				return err
			}
		}
	} else if c.Advertise != "" {
		if err := specs[0].setAdvertised(c.Advertise); err != nil {
			return err
		}
	}
	for _, l := range specs {
		if l.advertHost == "" && isWildcard(l.host) {
			return fmt.Errorf("server: listening on %q needs an advertised address (--advertise or advertised.listeners) that clients can reach",
				net.JoinHostPort(l.host, l.port))
		}
	}

	c.listeners = specs
	first := specs[0]
	c.Listen = net.JoinHostPort(first.host, first.port)
	c.listenHost, c.listenPort = first.host, first.port
	c.advertHost, c.advertPort = first.advertHost, first.advertPort
	if first.advertHost != "" {
		c.Advertise = net.JoinHostPort(first.advertHost, strconv.Itoa(int(first.advertPort)))
	}
	return nil
}

func (l *listenerSpec) setAdvertised(addr string) error {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("server: advertised address %q: %w", addr, err)
	}
	pn, err := strconv.ParseInt(p, 10, 32)
	if err != nil || pn <= 0 || pn > 65535 || h == "" || isWildcard(h) {
		return fmt.Errorf("server: advertised address %q must be a concrete host:port", addr)
	}
	l.advertHost, l.advertPort = h, int32(pn)
	return nil
}

// parseListenerList parses Kafka's NAME://host:port[,NAME://host:port...].
// A name that is a security protocol (PLAINTEXT://) is its own name.
func parseListenerList(v string) ([]listenerSpec, error) {
	var out []listenerSpec
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not of the form NAME://host:port", item)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		if pn, err := strconv.ParseUint(port, 10, 16); err != nil || pn > 65535 {
			return nil, fmt.Errorf("%q: bad port %q", item, port)
		}
		name = strings.ToUpper(name)
		if indexListener(out, name) >= 0 {
			return nil, fmt.Errorf("listener name %s appears twice", name)
		}
		out = append(out, listenerSpec{name: name, host: host, port: port})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listener in %q", v)
	}
	return out, nil
}

func indexListener(ls []listenerSpec, name string) int {
	for i := range ls {
		if ls[i].name == name {
			return i
		}
	}
	return -1
}

// listen binds every listener and resolves the advertised address of those
// that advertise where they are bound. On error nothing stays bound.
func (s *Server) listen() ([]net.Listener, error) {
	s.cfg.listeners = slices.Clone(s.cfg.listeners) // not shared with the caller's Config
	lns := make([]net.Listener, 0, len(s.cfg.listeners))
	for i := range s.cfg.listeners {
		l := &s.cfg.listeners[i]
		ln, err := net.Listen("tcp", net.JoinHostPort(l.host, l.port))
		if err != nil {
			for _, prev := range lns {
				prev.Close()
			}
			return nil, fmt.Errorf("server: listen %s: %w", l.name, err)
		}
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		l.boundPort, _ = strconv.Atoi(port)
		if l.advertHost == "" {
			if !isWildcard(l.host) {
				host = l.host
			}
			l.advertHost, l.advertPort = host, int32(l.boundPort)
		}
		s.log.Info().Str("listener", l.name).Str("listen", ln.Addr().String()).
			Str("advertise", net.JoinHostPort(l.advertHost, strconv.Itoa(int(l.advertPort)))).Msg("listening")
		lns = append(lns, ln)
	}
	first := s.cfg.listeners[0]
	s.cfg.advertHost, s.cfg.advertPort = first.advertHost, first.advertPort
	return lns, nil
}

// advertisedFor returns the advertised host and port of the listener a
// request came in on, which is what Metadata, FindCoordinator and
// DescribeCluster must answer with so that a client stays on the network
// it connected through. Listeners have distinct ports, so the connection's
// local port says which one it is.
func (s *Server) advertisedFor(r *request) (string, int32) {
	if r != nil && r.local != nil && len(s.cfg.listeners) > 1 {
		if ta, ok := r.local.(*net.TCPAddr); ok {
			for _, l := range s.cfg.listeners {
				if l.boundPort == ta.Port {
					return l.advertHost, l.advertPort
				}
			}
		}
	}
	return s.cfg.advertHost, s.cfg.advertPort
}

// ListenerAddr returns the advertised host:port of the named listener
// (e.g. "EXTERNAL"), or "" if there is no such listener. With port 0 it is
// known once Start has returned.
func (s *Server) ListenerAddr(name string) string {
	i := indexListener(s.cfg.listeners, strings.ToUpper(name))
	if i < 0 {
		return ""
	}
	l := s.cfg.listeners[i]
	return net.JoinHostPort(l.advertHost, strconv.Itoa(int(l.advertPort)))
}

// BoundListenerAddr returns the address the named listener is bound to
// (which may differ from the advertised one, e.g. behind a proxy), or ""
// if there is no such listener or Start has not bound it.
func (s *Server) BoundListenerAddr(name string) string {
	i := indexListener(s.cfg.listeners, strings.ToUpper(name))
	if i < 0 || s.cfg.listeners[i].boundPort == 0 {
		return ""
	}
	l := s.cfg.listeners[i]
	return net.JoinHostPort(l.host, strconv.Itoa(l.boundPort))
}

// listenersSetting renders the listeners as Kafka's listeners setting.
func (c *Config) listenersSetting() string {
	parts := make([]string, len(c.listeners))
	for i, l := range c.listeners {
		parts[i] = l.name + "://" + net.JoinHostPort(l.host, l.port)
	}
	return strings.Join(parts, ",")
}

// advertisedListenersSetting renders the advertised addresses as Kafka's
// advertised.listeners setting.
func (c *Config) advertisedListenersSetting() string {
	var parts []string
	for _, l := range c.listeners {
		if l.advertHost != "" {
			parts = append(parts, l.name+"://"+net.JoinHostPort(l.advertHost, strconv.Itoa(int(l.advertPort))))
		}
	}
	return strings.Join(parts, ",")
}
