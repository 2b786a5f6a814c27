package server

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEveryAPIHasAnAuthorizationRule: an API added without a rule would
// be refused wholesale with the authorizer on; this names it instead.
func TestEveryAPIHasAnAuthorizationRule(t *testing.T) {
	for _, e := range supportedAPIs() {
		_, ruled := authzRules[e.key]
		if ruled == authzNone[e.key] {
			t.Errorf("%s: want exactly one of an authorization rule or an authzNone entry (rule %v)", kmsg.NameForKey(e.key), ruled)
		}
	}
	for key := range authzRules {
		if _, ok := apis[key]; !ok {
			t.Errorf("rule for %s, which is not served", kmsg.NameForKey(key))
		}
	}
}

// TestAuthorizerConfig: only Kafka's StandardAuthorizer is accepted, and
// without authorizer.class.name there is no authorizer at all (every
// request takes the handler's path unchanged).
func TestAuthorizerConfig(t *testing.T) {
	for _, tc := range []struct {
		settings map[string]string
		ok       bool
	}{
		{map[string]string{"authorizer.class.name": StandardAuthorizerClass, "super.users": "User:a;User:b", "allow.everyone.if.no.acl.found": "true"}, true},
		{map[string]string{"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"}, false},
		{map[string]string{"allow.everyone.if.no.acl.found": "yes"}, false},
		{map[string]string{"super.users": "User:a"}, true},
	} {
		cfg := Config{DataDir: t.TempDir(), Settings: tc.settings}
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%v: Validate() = %v, want ok=%v", tc.settings, err, tc.ok)
		}
	}
	off := Config{Settings: map[string]string{"super.users": "User:a"}}
	if newAuthorizer(&off, nil) != nil {
		t.Error("an authorizer without authorizer.class.name")
	}
}
