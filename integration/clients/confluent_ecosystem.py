"""Drives confluent-kafka (librdkafka) against a broker, for Skiff's
integration tests (integration/ecosystem_python_test.go runs it).

usage: confluent_ecosystem.py BOOTSTRAP PREFIX

Every check is asserted here: any mismatch exits non-zero with a message on
stderr. On success it prints one JSON object (versions and what it did) that
the Go test checks again against the broker. Topics and groups are named
after PREFIX:

  PREFIX-admin      created (3 partitions), listed, deleted
  PREFIX-CODEC      one per codec: keyed records with headers, read back
  PREFIX-group      read half in group PREFIX-group, commit, resume
  PREFIX-idem       idempotent producer
  PREFIX-txn        committed, aborted, committed transactions, each also
                    committing offsets of group PREFIX-eos
"""
import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ["gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 3
PER_PARTITION = 10
TIMEOUT = 20.0


def fail(msg):
    print("confluent_ecosystem.py: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def wait_futures(futures, what):
    for name, f in futures.items():
        try:
            f.result(timeout=TIMEOUT)
        except Exception as e:  # noqa: BLE001 - any failure fails the check
            fail(f"{what} {name}: {e}")


def topic_names(admin):
    return set(admin.list_topics(timeout=TIMEOUT).topics)


def create(admin, topic, partitions=PARTITIONS):
    wait_futures(admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                     operation_timeout=TIMEOUT), "create topic")


def check_admin(admin, prefix):
    topic = prefix + "-admin"
    create(admin, topic)
    md = admin.list_topics(timeout=TIMEOUT)
    check(topic in md.topics, f"{topic} not listed after create: {sorted(md.topics)}")
    check(len(md.topics[topic].partitions) == PARTITIONS,
          f"{topic} has {len(md.topics[topic].partitions)} partitions, want {PARTITIONS}")
    wait_futures(admin.delete_topics([topic], operation_timeout=TIMEOUT), "delete topic")
    deadline = time.time() + TIMEOUT
    while topic in topic_names(admin):
        check(time.time() < deadline, f"{topic} still listed after delete")
        time.sleep(0.05)
    return {"created": topic, "deleted": True}


def expected(codec, p, i):
    """The record number i of partition p in the codec's topic."""
    key = f"key-{p}-{i}".encode()
    value = f"value-{codec}-{p}-{i}-".encode() + b"x" * (64 + i * 7)
    headers = [("seq", str(i).encode()), ("codec", codec.encode()), ("empty", b"")]
    return key, value, headers


class Delivery:
    """Collects delivery reports; any error fails the script."""

    def __init__(self):
        self.offsets = {}

    def __call__(self, err, msg):
        if err is not None:
            fail(f"delivery to {msg.topic()}/{msg.partition()}: {err}")
        self.offsets.setdefault(msg.partition(), []).append(msg.offset())


def produce_all(producer, topic, codec, delivery):
    for i in range(PER_PARTITION):
        for p in range(PARTITIONS):
            key, value, headers = expected(codec, p, i)
            producer.produce(topic, value=value, key=key, partition=p, headers=headers, on_delivery=delivery)
        producer.poll(0)
    left = producer.flush(TIMEOUT)
    check(left == 0, f"{topic}: {left} records not delivered")


def consume_all(bootstrap, topic, want, extra=None):
    """Reads want records from the start of every partition, without a group."""
    conf = {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": False}
    conf.update(extra or {})
    c = Consumer(conf)
    c.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = []
    deadline = time.time() + TIMEOUT
    while len(got) < want:
        check(time.time() < deadline, f"{topic}: consumed {len(got)} of {want} records")
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            fail(f"{topic}: consume error {m.error()}")
        got.append(m)
    c.close()
    return got


def check_codecs(bootstrap, prefix, admin):
    out = {}
    for codec in CODECS:
        topic = f"{prefix}-{codec}"
        create(admin, topic)
        delivery = Delivery()
        producer = Producer({"bootstrap.servers": bootstrap, "compression.codec": codec, "linger.ms": 100,
                             "acks": "all"})
        produce_all(producer, topic, codec, delivery)
        for p in range(PARTITIONS):
            check(delivery.offsets.get(p) == list(range(PER_PARTITION)),
                  f"{topic}/{p}: delivered at offsets {delivery.offsets.get(p)}")
        msgs = consume_all(bootstrap, topic, PARTITIONS * PER_PARTITION)
        per = {}
        for m in msgs:
            per.setdefault(m.partition(), []).append(m)
        for p in range(PARTITIONS):
            got = per.get(p, [])
            check(len(got) == PER_PARTITION, f"{topic}/{p}: {len(got)} records, want {PER_PARTITION}")
            for i, m in enumerate(got):
                key, value, headers = expected(codec, p, i)
                check(m.offset() == i, f"{topic}/{p}: record {i} at offset {m.offset()}")
                check(m.key() == key, f"{topic}/{p}@{i}: key {m.key()!r}, want {key!r}")
                check(m.value() == value, f"{topic}/{p}@{i}: value {m.value()!r}, want {value!r}")
                check(m.headers() == headers, f"{topic}/{p}@{i}: headers {m.headers()!r}, want {headers!r}")
        out[codec] = len(msgs)
    return out


def group_consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 500})


def check_group(bootstrap, prefix, admin):
    topic, group = prefix + "-group", prefix + "-group"
    create(admin, topic)
    delivery = Delivery()
    producer = Producer({"bootstrap.servers": bootstrap})
    produce_all(producer, topic, "group", delivery)
    total = PARTITIONS * PER_PARTITION
    half = total // 2

    # The first member reads half of the records, commits exactly what it
    # processed, and leaves. Records fetched beyond that are not processed.
    c = group_consumer(bootstrap, group)
    c.subscribe([topic])
    seen = {}
    deadline = time.time() + TIMEOUT
    while sum(len(v) for v in seen.values()) < half:
        check(time.time() < deadline, f"first member processed {sum(len(v) for v in seen.values())} of {half}")
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            fail(f"first member: {m.error()}")
        seen.setdefault(m.partition(), []).append(m.offset())
    first = {p: offs[-1] + 1 for p, offs in seen.items()}
    committed = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in first.items()], asynchronous=False)
    for tp in committed:
        check(tp.error is None, f"commit {tp.topic}/{tp.partition}: {tp.error}")
    c.close()

    # A new member resumes right after the committed offsets: no record
    # twice, none missing.
    c = group_consumer(bootstrap, group)
    c.subscribe([topic])
    resumed = {}
    deadline = time.time() + TIMEOUT
    while sum(len(v) for v in seen.values()) < total:
        check(time.time() < deadline,
              f"after resume: processed {sum(len(v) for v in seen.values())} of {total}: {seen}")
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            fail(f"second member: {m.error()}")
        p, o = m.partition(), m.offset()
        check(o not in seen.get(p, []), f"record {topic}/{p}@{o} delivered again after resume (committed {first})")
        want = resumed[p] + 1 if p in resumed else first.get(p, 0)
        check(o == want, f"{topic}/{p}: resumed at offset {o}, want {want} (committed {first})")
        resumed[p] = o
        seen.setdefault(p, []).append(o)
    for p in range(PARTITIONS):
        check(seen.get(p) == list(range(PER_PARTITION)), f"{topic}/{p}: offsets {seen.get(p)}")
    c.commit(asynchronous=False)
    got = {tp.partition: tp.offset for tp in
           c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT)}
    check(got == {p: PER_PARTITION for p in range(PARTITIONS)}, f"committed after resume: {got}")
    c.close()
    return {"total": total, "first": sum(first.values()), "first_committed": {str(p): o for p, o in first.items()}}


def check_idempotent(bootstrap, prefix, admin):
    topic = prefix + "-idem"
    create(admin, topic)
    delivery = Delivery()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 2})
    produce_all(producer, topic, "idem", delivery)
    for p in range(PARTITIONS):
        check(delivery.offsets.get(p) == list(range(PER_PARTITION)),
              f"{topic}/{p}: idempotent delivery at offsets {delivery.offsets.get(p)}")
    return {"records": PARTITIONS * PER_PARTITION}


def txn_values(tag, n):
    return [f"{tag}-{i}" for i in range(n)]


def wait_committed(consumer, topic, want, what):
    """Polls consumer's group until every partition of topic has committed want."""
    deadline = time.time() + TIMEOUT
    while True:
        got = {tp.partition: tp.offset for tp in
               consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT)}
        if got == {p: want for p in range(PARTITIONS)}:
            return
        check(time.time() < deadline, f"{what}: committed {got}, want {want} on every partition")
        time.sleep(0.05)


def check_transactions(bootstrap, prefix, admin):
    topic = prefix + "-txn"
    create(admin, topic)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": prefix + "-txid",
                         "transaction.timeout.ms": 30000})
    producer.init_transactions(TIMEOUT)
    # Each transaction also commits offsets of PREFIX-group for group
    # PREFIX-eos (consume-transform-produce); only committed ones count.
    eos_group, eos_topic = prefix + "-eos", prefix + "-group"
    eos = Consumer({"bootstrap.servers": bootstrap, "group.id": eos_group, "enable.auto.commit": False})
    plan = [("committed1", True, 2), ("aborted", False, 9), ("committed2", True, 7)]
    for tag, commit, offset in plan:
        producer.begin_transaction()
        for i, v in enumerate(txn_values(tag, 6)):
            producer.produce(topic, value=v.encode(), key=tag.encode(), partition=i % PARTITIONS)
        producer.send_offsets_to_transaction([TopicPartition(eos_topic, p, offset) for p in range(PARTITIONS)],
                                             eos.consumer_group_metadata(), TIMEOUT)
        producer.flush(TIMEOUT)
        if commit:
            producer.commit_transaction(TIMEOUT)
        else:
            producer.abort_transaction(TIMEOUT)
        if tag == "aborted":
            wait_committed(eos, eos_topic, 2, "offsets of group " + eos_group + " after the aborted transaction")
    wait_committed(eos, eos_topic, 7, "offsets of group " + eos_group + " after the last transaction")
    eos.close()

    want = sorted(txn_values("committed1", 6) + txn_values("committed2", 6))
    msgs = consume_all(bootstrap, topic, len(want), {"isolation.level": "read_committed"})
    got = sorted(m.value().decode() for m in msgs)
    check(got == want, f"read_committed saw {got}, want {want}")
    # Every aborted record precedes the second committed transaction in its
    # partition, so reading all of the committed ones proves none was shown.
    uncommitted = consume_all(bootstrap, topic, 18, {"isolation.level": "read_uncommitted"})
    check(sorted(m.value().decode() for m in uncommitted) == sorted(want + txn_values("aborted", 6)),
          "read_uncommitted does not see the aborted records")
    return {"committed": len(want), "aborted": 6, "eos_offsets": 7}


def main():
    bootstrap, prefix = sys.argv[1:3]
    # version() is a (string, int) pair in 1.x and a string in 2.x.
    version = confluent_kafka.version()
    out = {"versions": {"confluent_kafka": version if isinstance(version, str) else version[0],
                        "librdkafka": confluent_kafka.libversion()[0]}}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    steps = [("admin", lambda: check_admin(admin, prefix)),
             ("codecs", lambda: check_codecs(bootstrap, prefix, admin)),
             ("group", lambda: check_group(bootstrap, prefix, admin)),
             ("idempotent", lambda: check_idempotent(bootstrap, prefix, admin)),
             ("transactions", lambda: check_transactions(bootstrap, prefix, admin))]
    for name, step in steps:
        start = time.time()
        try:
            out[name] = step()
        except KafkaException as e:
            fail(f"{name}: {e}")
        print(f"confluent_ecosystem.py: {name} ok in {time.time() - start:.2f}s", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
