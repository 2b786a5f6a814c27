// Package skifftest runs an embedded Skiff broker for integration tests:
// a real Kafka-protocol broker on 127.0.0.1 with a free port, started in
// about a millisecond and stopped with the test.
//
//	func TestOrders(t *testing.T) {
//		b := skifftest.New(t, skifftest.Topic("orders", 3, nil))
//		cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
//		defer cl.Close()
//		...
//	}
//
// By default the broker runs the test profile (server.ProfileTest): groups
// balance without Kafka's 3 s initial rebalance delay, topics are created
// on first use, and short session timeouts are accepted. Broker settings
// take Kafka's names (Setting, Settings).
//
// Between subtests, Reset gives a clean slate: no topics (except those
// given to New, recreated empty), groups, transactions or producer ids.
//
// Faults are injected with InjectFault, on kfake's model: intercept a
// request by API key, optionally narrowed to a topic, partition, group or
// client id, and answer it with an error code, delay it, close the
// connection, drop it, or only observe it. TestControl serves the same
// control over HTTP for clients in other languages.
//
// Time: the broker runs on a Clock that tests advance (Advance) to make
// transaction timeouts, session timeouts, producer-id expiry and retention
// happen without waiting.
package skifftest
