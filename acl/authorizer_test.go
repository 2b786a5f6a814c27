package acl

import (
	"encoding/json"
	"testing"
)

func allow(typ ResourceType, pt PatternType, name, principal string, op Operation) Binding {
	return Binding{ResourceType: typ, Name: name, PatternType: pt, Principal: principal, Host: "*", Operation: op, Permission: PermAllow}
}

func deny(typ ResourceType, pt PatternType, name, principal string, op Operation) Binding {
	b := allow(typ, pt, name, principal, op)
	b.Permission = PermDeny
	return b
}

func onHost(b Binding, host string) Binding { b.Host = host; return b }

func TestAuthorize(t *testing.T) {
	const alice, bob, admin = "User:alice", "User:bob", "User:admin"
	type check struct {
		principal, host string
		op              Operation
		typ             ResourceType
		name            string
		want            bool
	}
	tests := []struct {
		name     string
		cfg      Config
		bindings []Binding
		checks   []check
	}{
		{
			name: "no acls denies by default",
			checks: []check{
				{alice, "10.0.0.1", OpRead, ResourceTopic, "t", false},
				{alice, "10.0.0.1", OpDescribe, ResourceCluster, ClusterName, false},
			},
		},
		{
			name: "no acls on the resource allows when allow.everyone.if.no.acl.found",
			cfg:  Config{AllowEveryoneIfNoACL: true},
			bindings: []Binding{
				allow(ResourceTopic, PatternLiteral, "other", bob, OpRead),
			},
			checks: []check{
				{alice, "10.0.0.1", OpRead, ResourceTopic, "t", true},
				// an acl on the resource for someone else closes it
				{alice, "10.0.0.1", OpRead, ResourceTopic, "other", false},
				{bob, "10.0.0.1", OpRead, ResourceTopic, "other", true},
				{bob, "10.0.0.1", OpWrite, ResourceTopic, "other", false},
			},
		},
		{
			name: "literal matches only its name",
			bindings: []Binding{
				allow(ResourceTopic, PatternLiteral, "orders", alice, OpRead),
			},
			checks: []check{
				{alice, "h", OpRead, ResourceTopic, "orders", true},
				{alice, "h", OpRead, ResourceTopic, "orders2", false},
				{alice, "h", OpRead, ResourceTopic, "order", false},
				{alice, "h", OpRead, ResourceGroup, "orders", false},
				{bob, "h", OpRead, ResourceTopic, "orders", false},
			},
		},
		{
			name: "literal wildcard matches every name of its type",
			bindings: []Binding{
				allow(ResourceTopic, PatternLiteral, "*", alice, OpWrite),
			},
			checks: []check{
				{alice, "h", OpWrite, ResourceTopic, "a", true},
				{alice, "h", OpWrite, ResourceTopic, "*", true},
				{alice, "h", OpWrite, ResourceGroup, "a", false},
			},
		},
		{
			name: "prefixed matches names starting with the prefix",
			bindings: []Binding{
				allow(ResourceTopic, PatternPrefixed, "team-a.", alice, OpRead),
				allow(ResourceTopic, PatternPrefixed, "t", bob, OpRead),
			},
			checks: []check{
				{alice, "h", OpRead, ResourceTopic, "team-a.orders", true},
				{alice, "h", OpRead, ResourceTopic, "team-a.", true},
				{alice, "h", OpRead, ResourceTopic, "team-a", false},
				{alice, "h", OpRead, ResourceTopic, "team-b.orders", false},
				{bob, "h", OpRead, ResourceTopic, "team-a.orders", true},
				{bob, "h", OpRead, ResourceTopic, "x", false},
			},
		},
		{
			name: "prefixed star is a literal prefix, not a wildcard",
			bindings: []Binding{
				allow(ResourceTopic, PatternPrefixed, "*", alice, OpRead),
			},
			checks: []check{
				{alice, "h", OpRead, ResourceTopic, "orders", false},
				{alice, "h", OpRead, ResourceTopic, "*x", true},
			},
		},
		{
			name: "deny wins over allow, whichever pattern carries it",
			bindings: []Binding{
				allow(ResourceTopic, PatternLiteral, "*", alice, OpAll),
				deny(ResourceTopic, PatternPrefixed, "secret", alice, OpRead),
				allow(ResourceTopic, PatternLiteral, "secret-x", alice, OpRead),
				deny(ResourceTopic, PatternLiteral, "*", WildcardPrincipal, OpDelete),
			},
			checks: []check{
				{alice, "h", OpRead, ResourceTopic, "public", true},
				{alice, "h", OpRead, ResourceTopic, "secret-x", false},
				{alice, "h", OpWrite, ResourceTopic, "secret-x", true},
				{alice, "h", OpDelete, ResourceTopic, "public", false},
				// deny READ does not deny DESCRIBE
				{alice, "h", OpDescribe, ResourceTopic, "secret-x", true},
			},
		},
		{
			name: "deny ALL denies every operation",
			bindings: []Binding{
				allow(ResourceGroup, PatternLiteral, "g", alice, OpRead),
				deny(ResourceGroup, PatternLiteral, "g", alice, OpAll),
			},
			checks: []check{
				{alice, "h", OpRead, ResourceGroup, "g", false},
				{alice, "h", OpDescribe, ResourceGroup, "g", false},
			},
		},
		{
			name: "implied operations",
			bindings: []Binding{
				allow(ResourceTopic, PatternLiteral, "r", alice, OpRead),
				allow(ResourceTopic, PatternLiteral, "w", alice, OpWrite),
				allow(ResourceTopic, PatternLiteral, "d", alice, OpDelete),
				allow(ResourceTopic, PatternLiteral, "a", alice, OpAlter),
				allow(ResourceTopic, PatternLiteral, "c", alice, OpCreate),
				allow(ResourceTopic, PatternLiteral, "ac", alice, OpAlterConfigs),
				allow(ResourceTopic, PatternLiteral, "dc", alice, OpDescribeConfigs),
				allow(ResourceTopic, PatternLiteral, "all", alice, OpAll),
				allow(ResourceTopic, PatternLiteral, "desc", alice, OpDescribe),
			},
			checks: []check{
				{alice, "h", OpDescribe, ResourceTopic, "r", true},
				{alice, "h", OpDescribe, ResourceTopic, "w", true},
				{alice, "h", OpDescribe, ResourceTopic, "d", true},
				{alice, "h", OpDescribe, ResourceTopic, "a", true},
				{alice, "h", OpDescribe, ResourceTopic, "c", false},
				{alice, "h", OpDescribe, ResourceTopic, "ac", false},
				{alice, "h", OpDescribeConfigs, ResourceTopic, "ac", true},
				{alice, "h", OpDescribeConfigs, ResourceTopic, "a", false},
				{alice, "h", OpAlterConfigs, ResourceTopic, "dc", false},
				{alice, "h", OpRead, ResourceTopic, "w", false},
				{alice, "h", OpRead, ResourceTopic, "desc", false},
				{alice, "h", OpClusterAction, ResourceTopic, "all", true},
				{alice, "h", OpDescribeConfigs, ResourceTopic, "all", true},
			},
		},
		{
			name: "deny of an implying operation does not deny the implied one",
			bindings: []Binding{
				allow(ResourceTopic, PatternLiteral, "t", alice, OpDescribe),
				deny(ResourceTopic, PatternLiteral, "t", alice, OpAlterConfigs),
				deny(ResourceTopic, PatternLiteral, "t", alice, OpWrite),
			},
			checks: []check{
				{alice, "h", OpDescribe, ResourceTopic, "t", true},
				{alice, "h", OpDescribeConfigs, ResourceTopic, "t", false}, // resource has acls, none allows
				{alice, "h", OpWrite, ResourceTopic, "t", false},
			},
		},
		{
			name: "wildcard principal",
			bindings: []Binding{
				allow(ResourceTopic, PatternLiteral, "t", WildcardPrincipal, OpRead),
				deny(ResourceTopic, PatternLiteral, "t", bob, OpRead),
			},
			checks: []check{
				{alice, "h", OpRead, ResourceTopic, "t", true},
				{"User:carol", "h", OpRead, ResourceTopic, "t", true},
				{bob, "h", OpRead, ResourceTopic, "t", false},
				{"Group:x", "h", OpRead, ResourceTopic, "t", true},
			},
		},
		{
			name: "host matching is exact or star",
			bindings: []Binding{
				onHost(allow(ResourceTopic, PatternLiteral, "t", alice, OpRead), "10.0.0.1"),
				onHost(deny(ResourceTopic, PatternLiteral, "t", alice, OpWrite), "10.0.0.2"),
				allow(ResourceTopic, PatternLiteral, "t", alice, OpWrite),
			},
			checks: []check{
				{alice, "10.0.0.1", OpRead, ResourceTopic, "t", true},
				{alice, "10.0.0.2", OpRead, ResourceTopic, "t", false},
				{alice, "10.0.0.1", OpWrite, ResourceTopic, "t", true},
				{alice, "10.0.0.2", OpWrite, ResourceTopic, "t", false},
			},
		},
		{
			name: "super users bypass deny",
			cfg:  Config{SuperUsers: " User:admin ; User:ops"},
			bindings: []Binding{
				deny(ResourceTopic, PatternLiteral, "*", WildcardPrincipal, OpAll),
				deny(ResourceCluster, PatternLiteral, ClusterName, admin, OpAll),
			},
			checks: []check{
				{admin, "h", OpWrite, ResourceTopic, "t", true},
				{"User:ops", "h", OpAlter, ResourceCluster, ClusterName, true},
				{alice, "h", OpWrite, ResourceTopic, "t", false},
				{"User:admin2", "h", OpWrite, ResourceTopic, "t", false},
			},
		},
		{
			name: "every resource type",
			bindings: []Binding{
				allow(ResourceCluster, PatternLiteral, ClusterName, alice, OpIdempotentWrite),
				allow(ResourceTransactionalID, PatternPrefixed, "tx-", alice, OpWrite),
				allow(ResourceDelegationToken, PatternLiteral, "tok", alice, OpDescribe),
				allow(ResourceGroup, PatternPrefixed, "", alice, OpRead), // empty prefix: everything
			},
			checks: []check{
				{alice, "h", OpIdempotentWrite, ResourceCluster, ClusterName, true},
				{alice, "h", OpClusterAction, ResourceCluster, ClusterName, false},
				{alice, "h", OpWrite, ResourceTransactionalID, "tx-1", true},
				{alice, "h", OpDescribe, ResourceTransactionalID, "tx-1", true},
				{alice, "h", OpWrite, ResourceTransactionalID, "ty-1", false},
				{alice, "h", OpDescribe, ResourceDelegationToken, "tok", true},
				{alice, "h", OpRead, ResourceGroup, "anything", true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := NewSet(tt.bindings)
			az := NewAuthorizer(tt.cfg, func() *Set { return set })
			for _, c := range tt.checks {
				if got := az.Authorize(c.principal, c.host, c.op, c.typ, c.name); got != c.want {
					t.Errorf("Authorize(%s, %s, %s, %s %q) = %v, want %v", c.principal, c.host, c.op, c.typ, c.name, got, c.want)
				}
			}
		})
	}
}

func TestAuthorizeNilSet(t *testing.T) {
	az := NewAuthorizer(Config{AllowEveryoneIfNoACL: true}, func() *Set { return nil })
	if !az.Authorize("User:a", "h", OpRead, ResourceTopic, "t") {
		t.Fatal("a nil set has no acls: allow.everyone.if.no.acl.found should allow")
	}
}

func strp(s string) *string { return &s }

func TestFilterMatches(t *testing.T) {
	lit := allow(ResourceTopic, PatternLiteral, "foo", "User:alice", OpRead)
	star := allow(ResourceTopic, PatternLiteral, "*", "User:alice", OpRead)
	pre := deny(ResourceTopic, PatternPrefixed, "fo", "User:bob", OpWrite)
	grp := onHost(allow(ResourceGroup, PatternLiteral, "foo", "User:alice", OpRead), "10.0.0.1")
	all := []Binding{lit, star, pre, grp}
	any := Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermAny}
	with := func(f func(*Filter)) Filter { g := any; f(&g); return g }
	tests := []struct {
		name string
		f    Filter
		want []Binding
	}{
		{"any matches all", any, all},
		{"resource type", with(func(f *Filter) { f.ResourceType = ResourceGroup }), []Binding{grp}},
		{"ANY pattern with a name is exact", with(func(f *Filter) { f.Name = strp("foo") }), []Binding{lit, grp}},
		{"ANY pattern with star is exact", with(func(f *Filter) { f.Name = strp("*") }), []Binding{star}},
		{"LITERAL pattern", with(func(f *Filter) { f.PatternType = PatternLiteral }), []Binding{lit, star, grp}},
		{"LITERAL with name", with(func(f *Filter) { f.PatternType = PatternLiteral; f.Name = strp("foo") }), []Binding{lit, grp}},
		{"PREFIXED with name is exact", with(func(f *Filter) { f.PatternType = PatternPrefixed; f.Name = strp("foo") }), nil},
		{"PREFIXED with its prefix", with(func(f *Filter) { f.PatternType = PatternPrefixed; f.Name = strp("fo") }), []Binding{pre}},
		{"MATCH applies to the resource", with(func(f *Filter) {
			f.PatternType = PatternMatch
			f.Name = strp("foo")
			f.ResourceType = ResourceTopic
		}), []Binding{lit, star, pre}},
		{"MATCH other name", with(func(f *Filter) { f.PatternType = PatternMatch; f.Name = strp("bar") }), []Binding{star}},
		{"MATCH without name", with(func(f *Filter) { f.PatternType = PatternMatch }), all},
		{"principal", with(func(f *Filter) { f.Principal = strp("User:bob") }), []Binding{pre}},
		{"host", with(func(f *Filter) { f.Host = strp("10.0.0.1") }), []Binding{grp}},
		{"host star is exact", with(func(f *Filter) { f.Host = strp("*") }), []Binding{lit, star, pre}},
		{"operation is exact (no implication)", with(func(f *Filter) { f.Operation = OpDescribe }), nil},
		{"operation", with(func(f *Filter) { f.Operation = OpWrite }), []Binding{pre}},
		{"permission", with(func(f *Filter) { f.Permission = PermDeny }), []Binding{pre}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Binding
			for _, b := range all {
				if tt.f.Matches(b) {
					got = append(got, b)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	good := Filter{ResourceType: ResourceAny, PatternType: PatternMatch, Operation: OpAny, Permission: PermAny}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mod := range []func(*Filter){
		func(f *Filter) { f.ResourceType = ResourceUnknown },
		func(f *Filter) { f.ResourceType = 42 },
		func(f *Filter) { f.PatternType = PatternUnknown },
		func(f *Filter) { f.Operation = OpUnknown },
		func(f *Filter) { f.Permission = 9 },
	} {
		f := good
		mod(&f)
		if err := f.Validate(); err == nil {
			t.Errorf("%+v: want an error", f)
		}
	}
}

func TestBindingValidate(t *testing.T) {
	good := allow(ResourceTopic, PatternLiteral, "t", "User:a", OpRead)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*Binding)
	}{
		{"cluster with another name", func(b *Binding) { b.ResourceType = ResourceCluster; b.Name = "c" }},
		{"empty name", func(b *Binding) { b.Name = "" }},
		{"pattern ANY", func(b *Binding) { b.PatternType = PatternAny }},
		{"pattern MATCH", func(b *Binding) { b.PatternType = PatternMatch }},
		{"resource ANY", func(b *Binding) { b.ResourceType = ResourceAny }},
		{"resource unknown code", func(b *Binding) { b.ResourceType = 99 }},
		{"operation ANY", func(b *Binding) { b.Operation = OpAny }},
		{"operation UNKNOWN", func(b *Binding) { b.Operation = OpUnknown }},
		{"permission ANY", func(b *Binding) { b.Permission = PermAny }},
		{"principal without colon", func(b *Binding) { b.Principal = "alice" }},
	}
	for _, tt := range tests {
		b := good
		tt.mod(&b)
		err := b.Validate()
		if _, ok := err.(*InvalidError); !ok {
			t.Errorf("%s: got %v, want an InvalidError", tt.name, err)
		}
	}
	c := allow(ResourceCluster, PatternLiteral, ClusterName, "User:a", OpAlter)
	if err := c.Validate(); err != nil {
		t.Errorf("cluster binding: %v", err)
	}
}

func TestSetWithWithout(t *testing.T) {
	a := allow(ResourceTopic, PatternLiteral, "a", "User:x", OpRead)
	b := allow(ResourceTopic, PatternPrefixed, "b", "User:x", OpRead)
	s := NewSet(nil).With([]Binding{a, b, a})
	if s.Len() != 2 {
		t.Fatalf("duplicates kept: %v", s.Bindings())
	}
	s = s.With([]Binding{a})
	if s.Len() != 2 {
		t.Fatalf("re-creating an acl added one: %v", s.Bindings())
	}
	any := Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermAny}
	lit := any
	lit.PatternType = PatternLiteral
	next, deleted := s.Without([]Filter{lit, any})
	if next.Len() != 0 || len(deleted[0]) != 1 || len(deleted[1]) != 2 {
		t.Fatalf("Without: left %v, deleted %v", next.Bindings(), deleted)
	}
	if s.Len() != 2 {
		t.Fatal("Without modified the original set")
	}
}

func TestBindingJSON(t *testing.T) {
	b := onHost(deny(ResourceTransactionalID, PatternPrefixed, "tx", "User:a", OpTwoPhaseCommit), "::1")
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got Binding
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got != b {
		t.Fatalf("round trip: %s gave %v", data, got)
	}
	if want := `{"resource_type":"TRANSACTIONAL_ID","name":"tx","pattern_type":"PREFIXED","principal":"User:a","host":"::1","operation":"TWO_PHASE_COMMIT","permission":"DENY"}`; string(data) != want {
		t.Fatalf("encoding %s, want %s", data, want)
	}
}

func BenchmarkAuthorize(b *testing.B) {
	var bs []Binding
	for i := range 1000 {
		bs = append(bs, allow(ResourceTopic, PatternLiteral, "topic-"+string(rune('a'+i%26))+string(rune('a'+i/26%26)), "User:u", OpRead))
		bs = append(bs, allow(ResourceTopic, PatternPrefixed, "pre-"+string(rune('a'+i%26)), "User:u", OpWrite))
	}
	set := NewSet(bs)
	az := NewAuthorizer(Config{}, func() *Set { return set })
	b.ReportAllocs()
	for b.Loop() {
		if !az.Authorize("User:u", "10.0.0.1", OpWrite, ResourceTopic, "pre-c.orders") {
			b.Fatal("denied")
		}
	}
}
