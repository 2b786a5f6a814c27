package server

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Principals of TLS clients (ssl.principal.mapping.rules, KIP-371). The
// subject of the client certificate, written as RFC 2253 (the form Java's
// X500Principal.getName() gives, e.g. "CN=alice,OU=eng,O=Acme"), goes
// through the rules in order; the first that matches names the principal.
// DEFAULT keeps the whole subject; RULE:pattern/replacement/[LU] must match
// the whole subject and rewrites it, lower- or upper-casing with L or U.
// When no rule matches, Kafka refuses the connection; so does Skiff.

type principalRule struct {
	isDefault   bool
	pattern     *regexp.Regexp
	replacement string // in Go's syntax (${1})
	lower       bool
	upper       bool
}

// ruleRE splits Kafka's rule list: DEFAULT, or RULE:pattern/replacement/
// with an optional L or U, where / and \ inside the parts are escaped.
var ruleRE = regexp.MustCompile(`^\s*(DEFAULT|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?))\s*(?:,|$)`)

func parsePrincipalRules(v string) ([]principalRule, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return []principalRule{{isDefault: true}}, nil
	}
	var rules []principalRule
	for rest := v; strings.TrimSpace(rest) != ""; {
		m := ruleRE.FindStringSubmatchIndex(rest)
		if m == nil {
			return nil, fmt.Errorf("invalid rule at %q", rest)
		}
		whole := rest[m[2]:m[3]]
		if whole == "DEFAULT" {
			rules = append(rules, principalRule{isDefault: true})
		} else {
			pat, repl, flag := rest[m[4]:m[5]], rest[m[6]:m[7]], rest[m[8]:m[9]]
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", whole, err)
			}
			rules = append(rules, principalRule{pattern: re, replacement: javaReplacement(repl, re.NumSubexp()),
				lower: flag == "L", upper: flag == "U"})
		}
		rest = rest[m[1]:]
	}
	return rules, nil
}

// javaReplacement turns Java's $1 back references into Go's ${1}. As
// Kafka does, a reference to a group that does not exist is shortened
// ($12 with one group is $1 then "2"), and escaped characters are literal.
func javaReplacement(r string, groups int) string {
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		switch c := r[i]; {
		case c == '\\' && i+1 < len(r):
			i++
			if r[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(r[i])
			}
		case c == '$' && i+1 < len(r) && r[i+1] >= '0' && r[i+1] <= '9':
			j := i + 1
			for j < len(r) && r[j] >= '0' && r[j] <= '9' {
				j++
			}
			digits := r[i+1 : j]
			for len(digits) > 1 {
				if n, _ := strconv.Atoi(digits); n <= groups {
					break
				}
				digits = digits[:len(digits)-1]
			}
			b.WriteString("${" + digits + "}")
			i += len(digits)
		case c == '$':
			b.WriteString("$$")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mapPrincipal applies the rules to a subject; ok is false when none
// matched.
func mapPrincipal(rules []principalRule, dn string) (string, bool) {
	for _, r := range rules {
		if r.isDefault {
			return dn, true
		}
		if !r.pattern.MatchString(dn) {
			continue
		}
		out := r.pattern.ReplaceAllString(dn, r.replacement)
		switch {
		case r.lower:
			out = strings.ToLower(out)
		case r.upper:
			out = strings.ToUpper(out)
		}
		return out, true
	}
	return "", false
}

// certSubject writes a certificate's subject as RFC 2253, most specific
// attribute first, as Java does.
func certSubject(c *x509.Certificate) string {
	return c.Subject.ToRDNSequence().String()
}
