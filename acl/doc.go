// Package acl is Skiff's authorizer: access control lists with the
// semantics of Apache Kafka's StandardAuthorizer (KIP-801), and the
// binding filters of the DescribeAcls and DeleteAcls APIs
// (AclBindingFilter). It holds no network code and does no I/O, so every
// rule is testable with a table.
//
// # Model
//
// A Binding says that a principal ("User:alice", or "User:*" for
// everyone) connecting from a host ("*" or one IP address) is ALLOWed or
// DENYed an Operation on the resources a pattern names: one resource
// (LITERAL), every resource of the type (LITERAL "*"), or every resource
// whose name starts with a prefix (PREFIXED).
//
// # Decision
//
// Authorizer.Authorize answers, in this order:
//
//  1. a super user (super.users) may do anything;
//  2. a matching DENY wins over any ALLOW;
//  3. a matching ALLOW allows; ALLOW of READ, WRITE, DELETE or ALTER
//     implies DESCRIBE, ALLOW of ALTER_CONFIGS implies DESCRIBE_CONFIGS,
//     and ALL matches every operation (for DENY too). DENY implies
//     nothing: denying READ does not deny DESCRIBE;
//  4. when some binding exists for the resource (for any principal) and
//     none allowed, the answer is no;
//  5. when no binding exists for the resource at all, the answer is
//     allow.everyone.if.no.acl.found (false by default).
//
// # Usage
//
//	set := acl.NewSet(bindings)            // immutable; publish it atomically
//	az := acl.NewAuthorizer(acl.Config{SuperUsers: "User:admin"}, func() *acl.Set { return set })
//	ok := az.Authorize("User:alice", "10.0.0.7", acl.OpWrite, acl.ResourceTopic, "orders")
//
// A Set is never modified: a change builds a new Set (With, Without) and
// the owner publishes it, so that lookups on the produce and fetch paths
// take no lock.
package acl
