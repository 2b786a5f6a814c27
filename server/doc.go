// Package server is Skiff's broker: listeners and connections, request
// dispatch to one handler per Kafka API (or tight family of APIs),
// authentication and authorization, metrics, and the embeddable API that
// starts a broker in-process.
//
// # Usage
//
//	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: dir})
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Close()
//	client, _ := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
//
// # Layout
//
// Each api_*.go file registers its handlers with the versions it supports
// (register), which is also what ApiVersions advertises, so the table
// cannot drift from the code. Handlers share one shape: take the decoded
// kmsg request, return the kmsg response, with Kafka errors as error codes.
// conn.go reads frames, runs a bounded pipeline of requests per connection
// and writes responses strictly in request order.
//
// With authorizer.class.name set, each API's authorization rule runs
// before its handler (authz.go; the rules in authz_*.go by API family,
// registered like the handlers). A rule refuses the request or removes
// what the principal may not touch and adds it back to the response with
// Kafka's *_AUTHORIZATION_FAILED code, so handlers know nothing of ACLs;
// the decisions come from package acl over the ACLs clusterstate keeps.
//
// Cluster metadata (topics, typed configs, quotas, internal topics) belongs
// to package clusterstate; cluster.go is a thin wrapper that keeps the
// method names the handlers call. The partition logs come from package
// storage, the group and transaction coordinators from package
// coordinator and coordinator/txn; groups.go and txn.go wire them to the
// internal topics. Metrics (metrics*.go, served by httpadmin.go with
// /healthz, /readyz and pprof) are read at scrape time: each partition
// points at its topic's clusterstate.TopicStats, which the produce and
// fetch paths add to atomically.
//
// # Concurrency
//
// Every connection has its own reader, handler and writer goroutines,
// started through the server's WaitGroup and stopped by Close. Produce and
// fetch look topics up without a broker-wide lock; each partition log has
// its own lock. The lock order of the whole broker is in LOCKS.md at the
// repository root.
//
// # Replication
//
// With Config.Cluster (a broker of a cluster whose metadata is in etcd) the
// partitions are replicated the way Kafka does it: replication.go (the
// manager: leaders' follower state, high watermark, ISR changes, the
// produce checks), replica_fetcher.go (one fetcher per leader broker) and
// api_fetch_replica.go (a leader serving its followers). Without it
// nothing of this runs and the broker is the single node it always was.
package server
