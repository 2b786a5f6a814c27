// Package clusterstate owns Skiff's cluster metadata: the cluster id, every
// topic with its id, config overrides and the typed configuration parsed
// from them once, its partitions with their assignments (replicas, leader,
// epochs) and this broker's logs, the client quotas, the finalized
// feature levels (KIP-584, features.go), and the internal
// topics (__consumer_offsets and __transaction_state: their creation, the
// produce guard that refuses client writes, and the log adapter both
// coordinators use). The server and the coordinators ask it; none of them
// keeps a map of topics of its own.
//
// # Usage
//
//	st, err := clusterstate.Open(clusterstate.Options{
//		Backend:      clusterstate.NewFileBackend(store.FS(), filepath.Join(dataDir, clusterstate.FileName)),
//		Logs:         store, // *storage.Store
//		Defaults:     clusterstate.ConfigDefaults{Values: brokerTopicDefaults},
//		NodeID:       1,
//		CountTraffic: true, // Topic.Stats for metrics
//	})
//	res := st.CreateTopics([]clusterstate.NewTopic{{Name: "orders", Partitions: 3}})
//	p := st.Partition("orders", 0)  // on the produce path: no lock taken
//	if code := clusterstate.ClientWriteError("orders"); code != nil { ... }
//	tc := res[0].Topic.Config       // typed, e.g. tc.MaxMessageBytes
//
// # Persistence
//
// A Backend stores the metadata as one Image. FileBackend, for a single
// node, keeps it in meta.json (format unchanged), replaced atomically:
// temp file, fsync, rename, fsync of the directory, through the storage FS
// it is given (the store's, so that MemFS crash and fault tests cover
// meta.json too). A meta.json that does not parse stops the start: it is
// never rewritten from scratch, which would forget every topic and remove
// its partition directories as strays. The interface carries what a shared
// store needs: Save is guarded by the revision the change was based on
// (ErrConflict otherwise) and Watch delivers others' changes, so an etcd
// backend can map Save to a revision-guarded transaction. With
// Options.Replicated (a broker in a cluster) the image also holds every
// partition's assignment, a goroutine owned by the State (Close stops it)
// applies the images other brokers save (Watch), and AlterPartition saves
// a leader's ISR change guarded by the partition epoch and the revision.
// MemBackend shares one image between brokers in one process.
//
// # Concurrency
//
// Lookups (Topic, TopicByID, Partition, TopicNames, Topics, Quotas,
// FeatureLevel, Features) take no lock: they read immutable snapshots
// behind atomic pointers, and a published Topic or Partition never
// changes. Changes hold changeMu for
// their whole course: they reserve names and ids, open logs and save the
// image with nothing else held, and publish the new snapshot only once the
// save has succeeded, so a failed save changes nothing and readers never
// wait for the disk. A topic's TopicStats are atomic counters shared by
// the republished versions of the topic. Lock order: changeMu, then
// storage's locks (Store.mu, Log.mu) taken inside OpenLog, Delete and
// SetConfig; see LOCKS.md at the repository root for the whole broker.
package clusterstate
