package acl

import "strings"

// Config is the authorizer's broker configuration.
type Config struct {
	// SuperUsers is super.users: principals separated by semicolons,
	// e.g. "User:admin;User:ops". They may do anything.
	SuperUsers string
	// AllowEveryoneIfNoACL is allow.everyone.if.no.acl.found: whether a
	// resource no binding names is open to everyone.
	AllowEveryoneIfNoACL bool
}

// Authorizer decides requests against the set its source publishes. It
// is safe for concurrent use and takes no lock.
type Authorizer struct {
	super         map[string]bool
	allowIfNoACLs bool
	acls          func() *Set
}

// NewAuthorizer returns an authorizer reading the current set from acls
// on every decision (an atomic pointer load, typically).
func NewAuthorizer(cfg Config, acls func() *Set) *Authorizer {
	a := &Authorizer{super: map[string]bool{}, allowIfNoACLs: cfg.AllowEveryoneIfNoACL, acls: acls}
	for _, p := range strings.Split(cfg.SuperUsers, ";") {
		if p = strings.TrimSpace(p); p != "" {
			a.super[p] = true
		}
	}
	return a
}

// IsSuperUser reports whether principal is listed in super.users.
func (a *Authorizer) IsSuperUser(principal string) bool { return a.super[principal] }

// Authorize reports whether principal, connected from host (an IP
// address as text), may perform op on the resource (typ, name). See the
// package doc for the rules.
func (a *Authorizer) Authorize(principal, host string, op Operation, typ ResourceType, name string) bool {
	if a.super[principal] {
		return true
	}
	found, allowed, denied := false, false, false
	a.acls().forResource(typ, name, func(b Binding) bool {
		found = true
		switch matchEntry(b, principal, host, op) {
		case PermDeny:
			denied = true
			return false // DENY wins; nothing can change the answer
		case PermAllow:
			allowed = true
		}
		return true
	})
	switch {
	case denied:
		return false
	case allowed:
		return true
	case found:
		return false
	}
	return a.allowIfNoACLs
}

// matchEntry says what b decides for principal at host doing op:
// PermAllow, PermDeny, or PermUnknown when b does not apply
// (StandardAuthorizerData.findResult).
func matchEntry(b Binding, principal, host string, op Operation) Permission {
	if b.Principal != principal && b.Principal != WildcardPrincipal {
		return PermUnknown
	}
	if b.Host != WildcardHost && b.Host != host {
		return PermUnknown
	}
	if b.Operation != OpAll {
		if b.Permission == PermAllow {
			// Implied operations apply to ALLOW only.
			switch op {
			case OpDescribe:
				if !impliesDescribe(b.Operation) {
					return PermUnknown
				}
			case OpDescribeConfigs:
				if b.Operation != OpDescribeConfigs && b.Operation != OpAlterConfigs {
					return PermUnknown
				}
			default:
				if b.Operation != op {
					return PermUnknown
				}
			}
		} else if b.Operation != op {
			return PermUnknown
		}
	}
	return b.Permission
}

func impliesDescribe(op Operation) bool {
	switch op {
	case OpDescribe, OpRead, OpWrite, OpDelete, OpAlter:
		return true
	}
	return false
}

// AuthorizeAny reports whether principal at host may do op on at least
// one resource of type typ, as Kafka's Authorizer.authorizeByResourceType
// decides it (KIP-679: an idempotent producer needs IDEMPOTENT_WRITE on
// the cluster or WRITE on some topic): a super user, or op allowed on a
// resource no binding names (allow.everyone.if.no.acl.found), or an
// ALLOW binding for op (or ALL) whose pattern no DENY binding for op
// covers (a LITERAL "*" DENY covers all; a PREFIXED DENY covers the
// names it prefixes).
func (a *Authorizer) AuthorizeAny(principal, host string, op Operation, typ ResourceType) bool {
	// A made-up name, as Kafka's default implementation does: it finds
	// super users and the "no acl" default without matching real names.
	if a.Authorize(principal, host, op, typ, "hardcode") {
		return true
	}
	applies := func(b Binding) bool {
		return b.ResourceType == typ && (b.Principal == principal || b.Principal == WildcardPrincipal) &&
			(b.Host == WildcardHost || b.Host == host) && (b.Operation == op || b.Operation == OpAll)
	}
	set := a.acls()
	var denyPrefixes []string
	denyLiterals := map[string]bool{}
	for _, b := range set.Bindings() {
		if b.Permission != PermDeny || !applies(b) {
			continue
		}
		if b.PatternType == PatternLiteral {
			if b.Name == WildcardResource {
				return false
			}
			denyLiterals[b.Name] = true
		} else {
			denyPrefixes = append(denyPrefixes, b.Name)
		}
	}
	for _, b := range set.Bindings() {
		if b.Permission != PermAllow || !applies(b) {
			continue
		}
		if b.PatternType == PatternLiteral && denyLiterals[b.Name] {
			continue
		}
		covered := false
		for _, p := range denyPrefixes {
			if strings.HasPrefix(b.Name, p) {
				covered = true
				break
			}
		}
		if !covered {
			return true
		}
	}
	return false
}
