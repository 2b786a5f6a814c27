"""Drives librdkafka's KIP-848 consumer (group.protocol=consumer, in
confluent-kafka 2.x) against a broker, for Skiff's integration tests
(integration/ecosystem_python_test.go runs it).

usage: confluent_kip848.py BOOTSTRAP PREFIX

Topic PREFIX-848 (4 partitions) and group PREFIX-848: member a takes every
partition; member b joins and the broker's assignor moves two to it,
revoking only those from a; records produced then are read exactly once,
each by its partition's owner; both commit; b leaves and a gets all four
back. Any mismatch exits non-zero with a message on stderr; on success it
prints one JSON object.
"""
import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 4
PER_PARTITION = 10
TIMEOUT = 30.0


def fail(msg):
    print("confluent_kip848.py: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Member:
    """A KIP-848 consumer that records what it is given and gives up."""

    def __init__(self, name, bootstrap, group, topic):
        self.name = name
        self.owned = set()
        self.revoked = []
        self.records = []
        # No session.timeout.ms, heartbeat.interval.ms or assignor: under
        # KIP-848 the broker owns them, and librdkafka refuses them.
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                           "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        self.c.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke)

    def on_assign(self, consumer, tps):
        self.owned |= {tp.partition for tp in tps}

    def on_revoke(self, consumer, tps):
        gone = {tp.partition for tp in tps}
        if gone:
            self.revoked.append(sorted(gone))
        self.owned -= gone

    def poll(self):
        m = self.c.poll(0.05)
        if m is None:
            return
        if m.error():
            fail(f"{self.name}: {m.error()}")
        self.records.append(m)

    def __repr__(self):
        return f"{self.name} owns {sorted(self.owned)} (revoked {self.revoked}, {len(self.records)} records)"


def poll_until(what, members, cond):
    deadline = time.time() + TIMEOUT
    while not cond():
        check(time.time() < deadline, f"timed out waiting for {what}: {members}")
        for m in members:
            m.poll()


def main():
    bootstrap, prefix = sys.argv[1:3]
    topic = group = prefix + "-848"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name, f in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]).items():
        f.result(timeout=TIMEOUT)
    everything = set(range(PARTITIONS))

    a = Member("a", bootstrap, group, topic)
    poll_until("a to own every partition", [a], lambda: a.owned == everything)
    b = Member("b", bootstrap, group, topic)
    poll_until("a and b to own two partitions each", [a, b],
               lambda: len(a.owned) == 2 and len(b.owned) == 2)
    check(a.owned | b.owned == everything, f"a and b together: {a} {b}")
    check(a.revoked == [sorted(b.owned)], f"a gave up {a.revoked}, want only b's {sorted(b.owned)}")

    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce(topic, value=f"r-{p}-{i}".encode(), partition=p)
    check(producer.flush(TIMEOUT) == 0, "records not delivered")
    total = PARTITIONS * PER_PARTITION
    poll_until(f"{total} records between a and b", [a, b], lambda: len(a.records) + len(b.records) >= total)
    seen = set()
    for m in (a, b):
        for r in m.records:
            check(r.partition() in m.owned, f"{m.name} read {r.partition()}@{r.offset()} it does not own")
            key = (r.partition(), r.offset())
            check(key not in seen, f"read twice: {key}")
            seen.add(key)
            check(r.value() == f"r-{r.partition()}-{r.offset()}".encode(), f"value {r.value()!r} at {key}")
    check(len(seen) == total, f"read {len(seen)} records, want {total}")
    for m in (a, b):
        m.c.commit(asynchronous=False)
    got = {tp.partition: tp.offset for tp in
           a.c.committed([confluent_kafka.TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT)}
    check(got == {p: PER_PARTITION for p in range(PARTITIONS)}, f"committed: {got}")
    split = {"a": sorted(a.owned), "b": sorted(b.owned)}

    b.c.close()
    poll_until("a to own every partition after b left", [a], lambda: a.owned == everything)
    a.c.close()
    version = confluent_kafka.version()  # a string in 2.x, a pair in 1.x
    print(json.dumps({"versions": {"confluent_kafka": version if isinstance(version, str) else version[0],
                                   "librdkafka": confluent_kafka.libversion()[0]},
                      "split": split, "records": len(seen)}))


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        fail(str(e))
