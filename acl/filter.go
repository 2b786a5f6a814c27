package acl

import "strings"

// Filter selects bindings, as Kafka's AclBindingFilter does for
// DescribeAcls and DeleteAcls. A nil Name, Principal or Host matches any;
// ResourceAny, OpAny, PermAny and PatternAny match any value.
// PatternMatch selects every binding that applies to the one resource
// Name: its LITERAL binding, the LITERAL "*" binding and every PREFIXED
// binding whose prefix Name starts with.
type Filter struct {
	ResourceType ResourceType
	Name         *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Validate refuses a filter with an UNKNOWN part, as
// AclControlManager.validateFilter does.
func (f Filter) Validate() error {
	if !f.ResourceType.Known() || !f.PatternType.Known() {
		return invalid("Unknown patternFilter.")
	}
	if !f.Operation.Known() || !f.Permission.Known() {
		return invalid("Unknown entryFilter.")
	}
	return nil
}

// Matches reports whether the filter selects b.
func (f Filter) Matches(b Binding) bool {
	return f.matchesPattern(b) && f.matchesEntry(b)
}

// matchesPattern is ResourcePatternFilter.matches.
func (f Filter) matchesPattern(b Binding) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.PatternType != PatternAny && f.PatternType != PatternMatch && f.PatternType != b.PatternType {
		return false
	}
	if f.Name == nil {
		return true
	}
	name := *f.Name
	if f.PatternType == PatternAny || f.PatternType == b.PatternType {
		return name == b.Name
	}
	// PatternMatch: does the binding apply to the resource called name?
	switch b.PatternType {
	case PatternLiteral:
		return name == b.Name || b.Name == WildcardResource
	case PatternPrefixed:
		return strings.HasPrefix(name, b.Name)
	}
	return false
}

// matchesEntry is AccessControlEntryFilter.matches.
func (f Filter) matchesEntry(b Binding) bool {
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != OpAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == PermAny || f.Permission == b.Permission
}
