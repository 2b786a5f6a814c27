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
