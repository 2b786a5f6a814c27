"""Drives kafka-python's KafkaAdminClient against a broker, for Skiff's
integration tests (integration/admin_test.go runs it).

usage: admin.py BOOTSTRAP TOPIC GROUP

Creates TOPIC (3 partitions, retention.ms=3600000), lists topics, describes
its configs, lists and describes consumer groups, fetches GROUP's committed
offsets (the test commits them first), deletes TOPIC, and prints one JSON
object with what it saw. Any error exits non-zero.
"""
import json
import sys

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic


def main():
    bootstrap, topic, group = sys.argv[1:4]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="skiff-kafka-python",
                             request_timeout_ms=20000)
    out = {}

    resp = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1,
                                         topic_configs={"retention.ms": "3600000"})])
    out["create_errors"] = [err for _, err, *_ in resp.topic_errors]

    out["topics"] = sorted(admin.list_topics())

    configs = {}
    for resp in admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]):
        for res in resp.resources:
            error_code, _, _, _, entries = res
            out["describe_configs_error"] = error_code
            for entry in entries:
                # (name, value, read_only, config_source, is_sensitive, synonyms)
                configs[entry[0]] = {"value": entry[1], "source": entry[3]}
    out["configs"] = configs

    out["groups"] = sorted(g for g, _ in admin.list_consumer_groups())
    described = admin.describe_consumer_groups([group])
    out["group_state"] = described[0].state

    offsets = admin.list_consumer_group_offsets(group)
    out["offsets"] = {f"{tp.topic}/{tp.partition}": om.offset for tp, om in offsets.items()}

    resp = admin.delete_topics([topic])
    out["delete_errors"] = [err for _, err in resp.topic_error_codes]
    out["topics_after_delete"] = sorted(admin.list_topics())
    admin.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
