"""A consume-transform-produce worker on confluent-kafka (librdkafka)'s
transactional producer, for Skiff's integration tests
(integration/eos_kill_test.go runs several and SIGKILLs one).

usage: confluent_eos.py BOOTSTRAP IN OUT GROUP TRANSACTIONAL_ID FREEZE_AFTER

Copies every record value of topic IN to topic OUT exactly once: each batch
is produced in one transaction together with the group's consumed offsets
(send_offsets_to_transaction), then committed. A batch whose transaction
fails abortably is aborted and the consumer rewound to the group's committed
offsets, so whoever owns the partitions redoes it. When FREEZE_AFTER >= 0,
after that many commits the worker produces and flushes its next batch,
prints "frozen" and blocks forever inside the open transaction, for the test
to SIGKILL it there. The worker otherwise runs until killed.
"""
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)

BATCH = 25
TIMEOUT = 30.0


def log(msg):
    print(f"confluent_eos.py {TXN_ID}: {msg}", file=sys.stderr, flush=True)


def rewind(consumer):
    """Seeks every assigned partition back to the group's committed offset."""
    assignment = consumer.assignment()
    if not assignment:
        return
    for tp in consumer.committed(assignment, timeout=TIMEOUT):
        offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
        consumer.seek(TopicPartition(tp.topic, tp.partition, offset))


def main():
    global TXN_ID
    bootstrap, in_topic, out_topic, group, TXN_ID, freeze_after = sys.argv[1:7]
    freeze_after = int(freeze_after)

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 3000,
        "heartbeat.interval.ms": 300,
        "fetch.wait.max.ms": 100,
    })
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": TXN_ID,
        "transaction.timeout.ms": 20000,
        "linger.ms": 5,
    })
    producer.init_transactions(TIMEOUT)
    consumer.subscribe([in_topic],
                       on_assign=lambda c, ps: log(f"assigned {[p.partition for p in ps]}"),
                       on_revoke=lambda c, ps: log(f"revoked {[p.partition for p in ps]}"))

    commits = 0
    while True:
        msgs = consumer.consume(BATCH, 0.2)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            continue
        producer.begin_transaction()
        for m in msgs:
            while True:
                try:
                    producer.produce(out_topic, value=m.value(), partition=0)
                    break
                except BufferError:
                    producer.poll(0.05)
        if commits == freeze_after:
            producer.flush(TIMEOUT)
            print("frozen", flush=True)
            while True:
                time.sleep(3600)
        try:
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()),
                consumer.consumer_group_metadata(), TIMEOUT)
            producer.commit_transaction(TIMEOUT)
            commits += 1
        except KafkaException as e:
            err = e.args[0]
            if err.retriable() and not err.txn_requires_abort() and not err.fatal():
                # e.g. a commit that timed out: retrying it is safe.
                log(f"retrying commit: {err}")
                producer.commit_transaction(TIMEOUT)
                commits += 1
                continue
            if err.fatal() or not err.txn_requires_abort():
                # Fenced or otherwise unrecoverable: let the test see it.
                log(f"fatal transaction error: {err}")
                sys.exit(2)
            log(f"aborting: {err}")
            producer.abort_transaction(TIMEOUT)
            rewind(consumer)


if __name__ == "__main__":
    TXN_ID = "?"
    main()
