package acl

import (
	"fmt"
	"strings"
)

// ResourceType is a kind of resource, with Kafka's wire codes.
type ResourceType int8

// Resource types. ResourceAny is for filters only; ResourceUser exists on
// the wire but Kafka's authorizer keeps no ACLs on it.
const (
	ResourceUnknown         ResourceType = 0
	ResourceAny             ResourceType = 1
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

// Operation is an action on a resource, with Kafka's wire codes.
type Operation int8

// Operations. OpAny is for filters only; OpAll in a binding matches
// every operation.
const (
	OpUnknown         Operation = 0
	OpAny             Operation = 1
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13
	OpDescribeTokens  Operation = 14
	OpTwoPhaseCommit  Operation = 15
)

// Permission is ALLOW or DENY, with Kafka's wire codes.
type Permission int8

// Permissions. PermAny is for filters only.
const (
	PermUnknown Permission = 0
	PermAny     Permission = 1
	PermDeny    Permission = 2
	PermAllow   Permission = 3
)

// PatternType says how a binding's resource name matches, with Kafka's
// wire codes. PatternAny and PatternMatch are for filters only.
const (
	PatternUnknown  PatternType = 0
	PatternAny      PatternType = 1
	PatternMatch    PatternType = 2
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

// PatternType is LITERAL or PREFIXED in a binding.
type PatternType int8

// Wildcards: the resource name matching every resource of a type (in a
// LITERAL binding), the principal matching every user, the host matching
// every address.
const (
	WildcardResource  = "*"
	WildcardPrincipal = "User:*"
	WildcardHost      = "*"
)

// ClusterName is the only name a CLUSTER resource has.
const ClusterName = "kafka-cluster"

var resourceNames = map[ResourceType]string{
	ResourceUnknown: "UNKNOWN", ResourceAny: "ANY", ResourceTopic: "TOPIC", ResourceGroup: "GROUP",
	ResourceCluster: "CLUSTER", ResourceTransactionalID: "TRANSACTIONAL_ID",
	ResourceDelegationToken: "DELEGATION_TOKEN", ResourceUser: "USER",
}

var operationNames = map[Operation]string{
	OpUnknown: "UNKNOWN", OpAny: "ANY", OpAll: "ALL", OpRead: "READ", OpWrite: "WRITE",
	OpCreate: "CREATE", OpDelete: "DELETE", OpAlter: "ALTER", OpDescribe: "DESCRIBE",
	OpClusterAction: "CLUSTER_ACTION", OpDescribeConfigs: "DESCRIBE_CONFIGS",
	OpAlterConfigs: "ALTER_CONFIGS", OpIdempotentWrite: "IDEMPOTENT_WRITE",
	OpCreateTokens: "CREATE_TOKENS", OpDescribeTokens: "DESCRIBE_TOKENS",
	OpTwoPhaseCommit: "TWO_PHASE_COMMIT",
}

var permissionNames = map[Permission]string{
	PermUnknown: "UNKNOWN", PermAny: "ANY", PermDeny: "DENY", PermAllow: "ALLOW",
}

var patternNames = map[PatternType]string{
	PatternUnknown: "UNKNOWN", PatternAny: "ANY", PatternMatch: "MATCH",
	PatternLiteral: "LITERAL", PatternPrefixed: "PREFIXED",
}

func (t ResourceType) String() string { return nameOf(resourceNames, t) }
func (o Operation) String() string    { return nameOf(operationNames, o) }
func (p Permission) String() string   { return nameOf(permissionNames, p) }
func (p PatternType) String() string  { return nameOf(patternNames, p) }

func nameOf[K ~int8](names map[K]string, k K) string {
	if n, ok := names[k]; ok {
		return n
	}
	return "UNKNOWN"
}

// Known reports whether the code is one Kafka defines; a code it does
// not define reads as UNKNOWN, as Kafka's fromCode does.
func (t ResourceType) Known() bool { _, ok := resourceNames[t]; return ok && t != ResourceUnknown }

// Known reports whether the code is one Kafka defines, besides UNKNOWN.
func (o Operation) Known() bool { _, ok := operationNames[o]; return ok && o != OpUnknown }

// Known reports whether the code is one Kafka defines, besides UNKNOWN.
func (p Permission) Known() bool { _, ok := permissionNames[p]; return ok && p != PermUnknown }

// Known reports whether the code is one Kafka defines, besides UNKNOWN.
func (p PatternType) Known() bool { _, ok := patternNames[p]; return ok && p != PatternUnknown }

// The enums are stored by name (in meta.json), so that the file reads as
// kafka-acls prints ACLs.

func (t ResourceType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
func (o Operation) MarshalText() ([]byte, error)    { return []byte(o.String()), nil }
func (p Permission) MarshalText() ([]byte, error)   { return []byte(p.String()), nil }
func (p PatternType) MarshalText() ([]byte, error)  { return []byte(p.String()), nil }

func (t *ResourceType) UnmarshalText(b []byte) error { return parseName(resourceNames, b, t) }
func (o *Operation) UnmarshalText(b []byte) error    { return parseName(operationNames, b, o) }
func (p *Permission) UnmarshalText(b []byte) error   { return parseName(permissionNames, b, p) }
func (p *PatternType) UnmarshalText(b []byte) error  { return parseName(patternNames, b, p) }

func parseName[K ~int8](names map[K]string, b []byte, out *K) error {
	s := strings.ToUpper(string(b))
	for k, n := range names {
		if n == s {
			*out = k
			return nil
		}
	}
	return fmt.Errorf("acl: unknown name %q", b)
}

// Binding is one ACL: a resource pattern and an access control entry.
type Binding struct {
	ResourceType ResourceType `json:"resource_type"`
	Name         string       `json:"name"`
	PatternType  PatternType  `json:"pattern_type"`
	Principal    string       `json:"principal"`
	Host         string       `json:"host"`
	Operation    Operation    `json:"operation"`
	Permission   Permission   `json:"permission"`
}

func (b Binding) String() string {
	return fmt.Sprintf("(pattern=%s:%s:%s, principal=%s, host=%s, operation=%s, permission=%s)",
		b.ResourceType, b.PatternType, b.Name, b.Principal, b.Host, b.Operation, b.Permission)
}

// InvalidError is why a binding or filter is refused; the APIs answer it
// as INVALID_REQUEST with its message.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Validate checks a binding to be created as Kafka does (AclApis and
// AclControlManager.validateNewAcl): a concrete pattern type, resource
// type, operation and permission, a non-empty resource name, the cluster
// named kafka-cluster, and a principal of the form type:name.
func (b Binding) Validate() error {
	if b.ResourceType == ResourceCluster && b.Name != ClusterName {
		return invalid("The only valid name for the CLUSTER resource is %s", ClusterName)
	}
	if b.Name == "" {
		return invalid("Invalid empty resource name")
	}
	if b.PatternType != PatternLiteral && b.PatternType != PatternPrefixed {
		return invalid("Invalid patternType %s", b.PatternType)
	}
	if !b.ResourceType.Known() || b.ResourceType == ResourceAny {
		return invalid("Invalid resourceType %s", b.ResourceType)
	}
	if !b.Operation.Known() || b.Operation == OpAny {
		return invalid("Invalid operation %s", b.Operation)
	}
	if b.Permission != PermAllow && b.Permission != PermDeny {
		return invalid("Invalid permissionType %s", b.Permission)
	}
	if !strings.Contains(b.Principal, ":") {
		return invalid("Could not parse principal from `%s` (no colon is present separating the principal type from the principal name)", b.Principal)
	}
	return nil
}
