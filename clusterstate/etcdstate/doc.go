// Package etcdstate keeps Skiff's cluster metadata in etcd and runs the
// cluster's membership: it is what a broker adds to clusterstate when it
// is one of several. Nothing here is linked into a code path of a single
// node: the broker only builds a Node when it is given etcd endpoints or
// told to embed an etcd member.
//
//   - Backend (backend.go) implements clusterstate.Backend: the image is
//     stored one key per topic plus one for cluster-wide settings, saves
//     are transactions guarded on each changed key's ModRevision, and
//     Watch delivers every change to every broker.
//   - Node (node.go) registers the broker under a lease (a dead broker's
//     key vanishes after the lease TTL), watches the live brokers, places
//     new partitions (placement.go, Kafka's rack-aware assignment), and
//     campaigns for the controller with concurrency.Election; the
//     controller elects partition leaders from the ISR when a leader's
//     lease expires (controller.go).
//   - Embedded (embed.go) runs an etcd member inside the broker, so that
//     three skiff processes are a cluster with nothing else installed.
//
// # Who writes
//
// Any broker writes topic changes (CreateTopics, DeleteTopics,
// CreatePartitions, configs) itself, with transactions guarded on the
// revisions of the keys it changes: etcd serializes them, so nothing is
// gained by forwarding to the controller, and a broker that lost the
// controller still serves admin requests. Leader elections are the
// controller's alone, so that two brokers never race to elect different
// leaders; they are guarded writes too, and a controller that lost its
// election mid-way has its write refused.
//
// Lock order: Backend.mu and Node.mu are leaves, never held across an etcd
// call; clusterstate's changeMu may be held when Placer.Place takes
// Node.mu.
package etcdstate
