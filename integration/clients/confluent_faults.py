"""Injects faults into a Skiff broker over its test-control HTTP API and
checks that confluent-kafka (librdkafka) recovers, for Skiff's integration
tests (integration/testkit_python_test.go runs it).

usage: confluent_faults.py BOOTSTRAP CONTROL_URL TOPIC

1. Produce to TOPIC is answered NOT_LEADER_OR_FOLLOWER three times; an
   idempotent producer still delivers 20 records, each once.
2. The first fetch of TOPIC closes the connection; a consumer still reads
   the 20 records once, in order.
3. The API itself: a spent fault is gone (404), a standing one is listed
   and deleted (204), and unknown errors are refused (400).

Every check is asserted here; on success it prints one JSON object that the
Go test checks against the broker.
"""
import json
import sys
import urllib.error
import urllib.request

from confluent_kafka import Consumer, Producer

N = 20
TIMEOUT = 20.0


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def main():
    bootstrap, control, topic = sys.argv[1:4]

    status, fault = call("POST", control + "/v1/faults", {
        "api": "Produce", "topic": topic, "error": "NOT_LEADER_OR_FOLLOWER", "times": 3})
    if status != 201 or fault.get("error_code") != 6 or fault.get("action") != "error":
        fail("POST produce fault: %s %s" % (status, fault))
    produce_fault = fault["id"]

    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(N):
        p.produce(topic, value=b"p%03d" % i, partition=0,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    if p.flush(TIMEOUT) != 0:
        fail("producer did not deliver everything in %ss" % TIMEOUT)
    if errors:
        fail("delivery errors: %s" % errors)

    status, seen = call("GET", control + "/v1/requests?api=Produce")
    hits = [r for r in seen["requests"] if r.get("fault_id") == produce_fault]
    if status != 200 or len(hits) != 3:
        fail("produce requests answered by the fault: %d, want 3 (%s)" % (len(hits), seen))
    status, _ = call("DELETE", control + "/v1/faults/%d" % produce_fault)
    if status != 404:
        fail("DELETE of a spent fault: %s, want 404" % status)

    status, fault = call("POST", control + "/v1/faults", {
        "api": "Fetch", "topic": topic, "action": "close", "times": 1})
    if status != 201:
        fail("POST fetch fault: %s %s" % (status, fault))
    fetch_fault = fault["id"]

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic + "-g",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    values = []
    import time
    deadline = time.time() + TIMEOUT
    while len(values) < N and time.time() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            print("consumer: %s" % msg.error(), file=sys.stderr)
            continue
        values.append(msg.value().decode())
    c.close()
    want = ["p%03d" % i for i in range(N)]
    if values != want:
        fail("consumed %s, want %s" % (values, want))

    status, seen = call("GET", control + "/v1/requests?api=Fetch")
    closed = [r for r in seen["requests"] if r.get("fault_id") == fetch_fault]
    if len(closed) != 1:
        fail("fetches closed by the fault: %d, want 1" % len(closed))

    status, fault = call("POST", control + "/v1/faults", {"api": "Metadata", "action": "observe"})
    status, listed = call("GET", control + "/v1/faults")
    if status != 200 or [f["id"] for f in listed["faults"]] != [fault["id"]]:
        fail("GET /v1/faults: %s %s" % (status, listed))
    status, _ = call("DELETE", control + "/v1/faults/%d" % fault["id"])
    if status != 204:
        fail("DELETE of a standing fault: %s, want 204" % status)
    status, body = call("POST", control + "/v1/faults", {"api": "Produce", "error": "NO_SUCH_ERROR"})
    if status != 400:
        fail("POST with an unknown error: %s %s, want 400" % (status, body))

    print(json.dumps({"produce_fault_hits": len(hits), "fetch_fault_hits": len(closed), "values": values}))


if __name__ == "__main__":
    main()
