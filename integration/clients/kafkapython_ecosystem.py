"""Drives kafka-python against a broker, for Skiff's integration tests
(integration/ecosystem_python_test.go runs it).

usage: kafkapython_ecosystem.py BOOTSTRAP PREFIX

Every check is asserted here: any mismatch exits non-zero with a message on
stderr. On success it prints one JSON object (versions and what it did) that
the Go test checks again against the broker. Topics and groups are named
after PREFIX:

  PREFIX-admin      created (3 partitions), listed, deleted
  PREFIX-gzip       keyed records with headers, read back
  PREFIX-group      read half in group PREFIX-group, commit, resume
  PREFIX-txn        written by the Go test before the script runs: on
                    partition 0 a committed, an aborted and a committed
                    transaction of 6 records each, every one followed by
                    its control record; read to its end

kafka-python 2.0.2 compresses with gzip on its own; snappy, lz4 and zstd
need extra python packages, so only the codecs available are exercised. It
has no idempotent or transactional producer and always fetches
read_uncommitted; the script reports that instead of testing it, and reads
a topic that another client wrote transactions to.
"""
import json
import sys
import time

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as kcodec
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

PARTITIONS = 3
PER_PARTITION = 10
TIMEOUT = 20.0


def fail(msg):
    print("kafkapython_ecosystem.py: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def create(admin, topic):
    resp = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    errors = [(name, err) for name, err, *_ in resp.topic_errors if err != 0]
    check(not errors, f"create topic {topic}: {errors}")


def check_admin(bootstrap, admin, prefix):
    topic = prefix + "-admin"
    create(admin, topic)
    check(topic in admin.list_topics(), f"{topic} not listed after create")
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    parts = c.partitions_for_topic(topic)
    c.close()
    check(parts == set(range(PARTITIONS)), f"{topic} partitions {parts}, want {PARTITIONS}")
    resp = admin.delete_topics([topic])
    errors = [(name, err) for name, err in resp.topic_error_codes if err != 0]
    check(not errors, f"delete topic {topic}: {errors}")
    deadline = time.time() + TIMEOUT
    while topic in admin.list_topics():
        check(time.time() < deadline, f"{topic} still listed after delete")
        time.sleep(0.05)
    return {"created": topic, "deleted": True}


def expected(codec, p, i):
    """The record number i of partition p in the codec's topic."""
    key = f"key-{p}-{i}".encode()
    value = f"value-{codec}-{p}-{i}-".encode() + b"x" * (64 + i * 7)
    headers = [("seq", str(i).encode()), ("codec", codec.encode()), ("empty", b"")]
    return key, value, headers


def produce_all(producer, topic, codec):
    futures = []
    for i in range(PER_PARTITION):
        for p in range(PARTITIONS):
            key, value, headers = expected(codec, p, i)
            futures.append(producer.send(topic, value=value, key=key, headers=headers, partition=p))
    producer.flush(TIMEOUT)
    offsets = {}
    for f in futures:
        md = f.get(timeout=TIMEOUT)
        offsets.setdefault(md.partition, []).append(md.offset)
    for p in range(PARTITIONS):
        check(offsets.get(p) == list(range(PER_PARTITION)), f"{topic}/{p}: delivered at offsets {offsets.get(p)}")


def poll_records(consumer, what, want, on_record):
    """Polls until on_record has been given want records."""
    n = 0
    deadline = time.time() + TIMEOUT
    while n < want:
        check(time.time() < deadline, f"{what}: got {n} of {want} records")
        for _, recs in consumer.poll(timeout_ms=200).items():
            for r in recs:
                if n < want:
                    on_record(r)
                    n += 1
    return n


def check_codecs(bootstrap, admin, prefix, codecs):
    out = {}
    for codec in codecs:
        topic = f"{prefix}-{codec}"
        create(admin, topic)
        producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, acks="all",
                                 linger_ms=20)
        produce_all(producer, topic, codec)
        producer.close()
        c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
        c.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        c.seek_to_beginning()
        per = {}
        poll_records(c, topic, PARTITIONS * PER_PARTITION, lambda r: per.setdefault(r.partition, []).append(r))
        c.close()
        for p in range(PARTITIONS):
            got = per.get(p, [])
            check(len(got) == PER_PARTITION, f"{topic}/{p}: {len(got)} records, want {PER_PARTITION}")
            for i, r in enumerate(got):
                key, value, headers = expected(codec, p, i)
                check(r.offset == i, f"{topic}/{p}: record {i} at offset {r.offset}")
                check(r.key == key, f"{topic}/{p}@{i}: key {r.key!r}, want {key!r}")
                check(r.value == value, f"{topic}/{p}@{i}: value {r.value!r}, want {value!r}")
                check(list(r.headers) == headers, f"{topic}/{p}@{i}: headers {r.headers!r}, want {headers!r}")
        out[codec] = PARTITIONS * PER_PARTITION
    return out


def group_consumer(bootstrap, group, topic):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500)
    c.subscribe([topic])
    return c


def check_group(bootstrap, admin, prefix):
    topic, group = prefix + "-group", prefix + "-group"
    create(admin, topic)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    produce_all(producer, topic, "group")
    producer.close()
    total = PARTITIONS * PER_PARTITION
    half = total // 2

    # The first member reads half of the records, commits exactly what it
    # processed, and leaves. Records fetched beyond that are not processed.
    seen = {}
    c = group_consumer(bootstrap, group, topic)
    poll_records(c, "first member", half, lambda r: seen.setdefault(r.partition, []).append(r.offset))
    first = {p: offs[-1] + 1 for p, offs in seen.items()}
    c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in first.items()})
    c.close(autocommit=False)

    # A new member resumes right after the committed offsets: no record
    # twice, none missing.
    resumed = {}

    def on_record(r):
        p, o = r.partition, r.offset
        check(o not in seen.get(p, []), f"record {topic}/{p}@{o} delivered again after resume (committed {first})")
        want = resumed[p] + 1 if p in resumed else first.get(p, 0)
        check(o == want, f"{topic}/{p}: resumed at offset {o}, want {want} (committed {first})")
        resumed[p] = o
        seen.setdefault(p, []).append(o)

    c = group_consumer(bootstrap, group, topic)
    poll_records(c, "after resume", total - half, on_record)
    for p in range(PARTITIONS):
        check(seen.get(p) == list(range(PER_PARTITION)), f"{topic}/{p}: offsets {seen.get(p)}")
    c.commit()
    for p in range(PARTITIONS):
        got = c.committed(TopicPartition(topic, p))
        check(got == PER_PARTITION, f"committed {topic}/{p} after resume: {got}")
    c.close(autocommit=False)
    return {"total": total, "first": sum(first.values()), "first_committed": {str(p): o for p, o in first.items()}}


# Control records of the transactions the Go test writes to PREFIX-txn/0:
# offset -> record key (version 0, type 1 commit or 0 abort).
CONTROL = {6: b"\x00\x00\x00\x01", 13: b"\x00\x00\x00\x00", 20: b"\x00\x00\x00\x01"}


def check_transactional_topic(bootstrap, prefix):
    """Reads PREFIX-txn/0, which holds transactions and their control
    records, to its end. kafka-python 2.0.2 reads read_uncommitted only, so
    it must show all 18 data records in order. It also hands the control
    records to the application (dpkp/kafka-python#1853, fixed in 2.1.0):
    those must then be exactly the broker's markers, commit or abort, at
    their offsets; a kafka-python that skips them passes too."""
    topic = prefix + "-txn"
    tp = TopicPartition(topic, 0)
    want = [f"{tag}-{i}" for tag in ("committed1", "aborted", "committed2") for i in range(6)]
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    c.assign([tp])
    c.seek_to_beginning()
    end = c.end_offsets([tp])[tp]
    check(end == len(want) + len(CONTROL), f"{topic}/0 ends at {end}, want {len(want) + len(CONTROL)}")
    data, control = [], []
    deadline = time.time() + TIMEOUT
    while c.position(tp) < end:
        check(time.time() < deadline, f"{topic}/0: position {c.position(tp)} never reached the end {end}")
        for recs in c.poll(timeout_ms=200).values():
            for r in recs:
                (control if r.offset in CONTROL else data).append(r)
    c.close()
    check([r.value.decode() for r in data] == want, f"{topic}/0: read {[r.value for r in data]}, want {want}")
    check([r.offset for r in data] == [o for o in range(end) if o not in CONTROL],
          f"{topic}/0: data records at offsets {[r.offset for r in data]}")
    for r in control:
        # Value: version 0 (int16) and the coordinator epoch (int32).
        check(r.key == CONTROL[r.offset] and len(r.value) == 6 and r.value[:2] == b"\x00\x00",
              f"{topic}/0@{r.offset}: control record key {r.key!r} value {r.value!r}, want key {CONTROL[r.offset]!r}")
    check(len(control) in (0, len(CONTROL)), f"{topic}/0: {len(control)} of {len(CONTROL)} control records returned")
    return {"data_records": len(data), "control_records_returned": len(control), "end": end}


def main():
    bootstrap, prefix = sys.argv[1:3]
    check(kcodec.has_gzip(), "kafka-python cannot gzip")
    available = {"snappy": kcodec.has_snappy(), "lz4": kcodec.has_lz4(), "zstd": kcodec.has_zstd()}
    codecs = ["gzip"] + [c for c, ok in available.items() if ok]
    out = {"versions": {"kafka-python": kafka.__version__},
           "codecs_available": ["gzip"] + [c for c, ok in available.items() if ok],
           # 2.0.2 has neither; say so if a newer one shows up.
           "idempotent": {"supported": "enable_idempotence" in KafkaProducer.DEFAULT_CONFIG},
           "transactions": {"supported": "transactional_id" in KafkaProducer.DEFAULT_CONFIG,
                            "read_committed": "isolation_level" in KafkaConsumer.DEFAULT_CONFIG}}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    # The broker version kafka-python infers from ApiVersions picks its
    # request versions (2.0.2 knows up to 2.5).
    out["versions"]["inferred_broker"] = ".".join(map(str, admin.config["api_version"]))
    steps = [("admin", lambda: check_admin(bootstrap, admin, prefix)),
             ("codecs", lambda: check_codecs(bootstrap, admin, prefix, codecs)),
             ("group", lambda: check_group(bootstrap, admin, prefix)),
             ("transactional_topic", lambda: check_transactional_topic(bootstrap, prefix))]
    for name, step in steps:
        start = time.time()
        try:
            out[name] = step()
        except kafka.errors.KafkaError as e:
            fail(f"{name}: {e!r}")
        print(f"kafkapython_ecosystem.py: {name} ok in {time.time() - start:.2f}s", file=sys.stderr)
    admin.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
