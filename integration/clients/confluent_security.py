"""Produces and consumes through one secured listener with confluent-kafka
(librdkafka), for integration/security_clients_test.go.

usage: confluent_security.py TOPIC CONFIG_JSON [expect-auth-failure]

CONFIG_JSON is the librdkafka configuration (bootstrap.servers,
security.protocol, sasl.*, ssl.*). It produces 10 records to TOPIC and reads
them back, printing {"consumed": N}. With expect-auth-failure it instead
expects the producer to report an authentication error and no delivery,
and prints {"auth_error": "..."}.
"""
import json
import sys

from confluent_kafka import Consumer, KafkaError, Producer

TIMEOUT = 20.0


def fail(msg):
    print("confluent_security.py: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    topic, conf = sys.argv[1], json.loads(sys.argv[2])
    expect_failure = len(sys.argv) > 3 and sys.argv[3] == "expect-auth-failure"
    errors = []
    conf = dict(conf, error_cb=lambda err: errors.append(err))
    if expect_failure:
        p = Producer(dict(conf, **{"message.timeout.ms": 5000}))
        delivered = []
        p.produce(topic, b"x", on_delivery=lambda err, msg: delivered.append(err))
        p.flush(TIMEOUT)
        if any(err is None for err in delivered):
            fail("a record was delivered with bad credentials")
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if not auth:
            fail("no authentication error, got %s" % errors)
        print(json.dumps({"auth_error": auth[0].str()}))
        return
    p = Producer(conf)
    for i in range(10):
        p.produce(topic, ("v%d" % i).encode())
    if p.flush(TIMEOUT) != 0:
        fail("records not delivered: %s" % errors)
    c = Consumer(dict(conf, **{"group.id": topic + "-g", "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = []
    for _ in range(200):
        m = c.poll(0.5)
        if m is None:
            if len(got) >= 10:
                break
            continue
        if m.error():
            fail("consume: %s" % m.error())
        got.append(m.value().decode())
        if len(got) >= 10:
            break
    c.close()
    if got != ["v%d" % i for i in range(10)]:
        fail("consumed %s" % got)
    print(json.dumps({"consumed": len(got)}))


main()
