package clusterstate

import (
	"testing"

	"github.com/skiffmq/skiff/acl"
)

func TestACLsSurviveRestart(t *testing.T) {
	f := open(t, t.TempDir())
	a := acl.Binding{ResourceType: acl.ResourceTopic, Name: "t", PatternType: acl.PatternPrefixed,
		Principal: "User:a", Host: "*", Operation: acl.OpRead, Permission: acl.PermAllow}
	b := a
	b.Permission = acl.PermDeny
	if err := f.state.CreateACLs([]acl.Binding{a, b}); err != nil {
		t.Fatal(err)
	}
	writes := f.backend.Writes()
	if err := f.state.CreateACLs([]acl.Binding{a}); err != nil {
		t.Fatal(err)
	}
	if f.backend.Writes() != writes {
		t.Fatal("re-creating an existing acl saved the metadata")
	}
	f = f.reopen(t)
	if got := f.state.ACLs().Bindings(); len(got) != 2 {
		t.Fatalf("after restart: %v", got)
	}
	deny := acl.Filter{ResourceType: acl.ResourceAny, PatternType: acl.PatternAny, Operation: acl.OpAny, Permission: acl.PermDeny}
	deleted, err := f.state.DeleteACLs([]acl.Filter{deny})
	if err != nil || len(deleted[0]) != 1 || deleted[0][0] != b {
		t.Fatalf("DeleteACLs = %v, %v", deleted, err)
	}
	f = f.reopen(t)
	if got := f.state.ACLs().Bindings(); len(got) != 1 || got[0] != a {
		t.Fatalf("after delete and restart: %v", got)
	}
}

func TestACLChangeNotPublishedWhenSaveFails(t *testing.T) {
	f := open(t, t.TempDir())
	f.backend.mu.Lock()
	f.backend.fail = true
	f.backend.mu.Unlock()
	a := acl.Binding{ResourceType: acl.ResourceGroup, Name: "g", PatternType: acl.PatternLiteral,
		Principal: "User:a", Host: "*", Operation: acl.OpRead, Permission: acl.PermAllow}
	if err := f.state.CreateACLs([]acl.Binding{a}); err == nil {
		t.Fatal("want the save's error")
	}
	if n := f.state.ACLs().Len(); n != 0 {
		t.Fatalf("%d acls published after a failed save", n)
	}
	f.backend.mu.Lock()
	f.backend.fail = false
	f.backend.mu.Unlock()
	if err := f.state.CreateACLs([]acl.Binding{a}); err != nil {
		t.Fatal(err)
	}
	if n := f.state.ACLs().Len(); n != 1 {
		t.Fatalf("%d acls after a good save", n)
	}
}
