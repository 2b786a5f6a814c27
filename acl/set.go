package acl

import (
	"cmp"
	"slices"
)

// Set is an immutable collection of distinct bindings, indexed for
// Authorize. Its owner publishes it through an atomic pointer and
// replaces it whole on every change.
type Set struct {
	all []Binding // sorted, distinct
	// literal holds the LITERAL bindings (the "*" name included) by
	// resource.
	literal map[resourceKey][]Binding
	// prefixed holds the PREFIXED bindings by resource type and prefix;
	// prefixLens are the distinct prefix lengths per type, so that a
	// lookup tries only the prefixes that exist.
	prefixed   map[resourceKey][]Binding
	prefixLens map[ResourceType][]int
}

type resourceKey struct {
	typ  ResourceType
	name string
}

// NewSet builds a set from bindings; duplicates are dropped.
func NewSet(bindings []Binding) *Set {
	all := slices.Clone(bindings)
	slices.SortFunc(all, compareBindings)
	all = slices.Compact(all)
	s := &Set{
		all:        all,
		literal:    map[resourceKey][]Binding{},
		prefixed:   map[resourceKey][]Binding{},
		prefixLens: map[ResourceType][]int{},
	}
	for _, b := range all {
		k := resourceKey{b.ResourceType, b.Name}
		switch b.PatternType {
		case PatternLiteral:
			s.literal[k] = append(s.literal[k], b)
		case PatternPrefixed:
			if len(s.prefixed[k]) == 0 {
				s.prefixLens[b.ResourceType] = append(s.prefixLens[b.ResourceType], len(b.Name))
			}
			s.prefixed[k] = append(s.prefixed[k], b)
		}
	}
	for t, lens := range s.prefixLens {
		slices.Sort(lens)
		s.prefixLens[t] = slices.Compact(lens)
	}
	return s
}

func compareBindings(a, b Binding) int {
	return cmp.Or(
		cmp.Compare(a.ResourceType, b.ResourceType),
		cmp.Compare(a.PatternType, b.PatternType),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Principal, b.Principal),
		cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation),
		cmp.Compare(a.Permission, b.Permission),
	)
}

// Len is the number of bindings.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.all)
}

// Bindings returns every binding, sorted by resource. The slice is
// shared: do not modify it.
func (s *Set) Bindings() []Binding {
	if s == nil {
		return nil
	}
	return s.all
}

// Describe returns the bindings f selects, sorted by resource.
func (s *Set) Describe(f Filter) []Binding {
	var out []Binding
	for _, b := range s.Bindings() {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	return out
}

// With returns the set with bindings added; ones already present are
// kept once (creating an existing ACL succeeds and changes nothing).
func (s *Set) With(bindings []Binding) *Set {
	return NewSet(append(slices.Clone(s.Bindings()), bindings...))
}

// Without returns the set without the bindings any of filters selects,
// and, per filter, the bindings it selected (a binding selected by
// several filters is reported under each, as Kafka does).
func (s *Set) Without(filters []Filter) (*Set, [][]Binding) {
	deleted := make([][]Binding, len(filters))
	var kept []Binding
	for _, b := range s.Bindings() {
		hit := false
		for i, f := range filters {
			if f.Matches(b) {
				deleted[i] = append(deleted[i], b)
				hit = true
			}
		}
		if !hit {
			kept = append(kept, b)
		}
	}
	return NewSet(kept), deleted
}

// forResource calls fn with every binding whose pattern applies to the
// resource (typ, name): its literal name, the "*" wildcard and every
// prefix of name that a PREFIXED binding names. It stops when fn returns
// false.
func (s *Set) forResource(typ ResourceType, name string, fn func(Binding) bool) {
	if s == nil {
		return
	}
	for _, b := range s.literal[resourceKey{typ, name}] {
		if !fn(b) {
			return
		}
	}
	if name != WildcardResource {
		for _, b := range s.literal[resourceKey{typ, WildcardResource}] {
			if !fn(b) {
				return
			}
		}
	}
	for _, n := range s.prefixLens[typ] {
		if n > len(name) {
			break
		}
		for _, b := range s.prefixed[resourceKey{typ, name[:n]}] {
			if !fn(b) {
				return
			}
		}
	}
}
