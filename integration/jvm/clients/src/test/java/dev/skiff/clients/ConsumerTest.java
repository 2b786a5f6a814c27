package dev.skiff.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Java consumer: each group protocol and assignor, commits, seeking, pausing and static membership. */
class ConsumerTest {
    static final int PARTITIONS = 4;
    static final int PER_PARTITION = 10;
    static Admin admin;

    @BeforeAll
    static void setUp() {
        admin = Skiff.admin();
    }

    @AfterAll
    static void tearDown() {
        admin.close();
    }

    static void produce(String topic, int partitions, int perPartition, String tag) throws Exception {
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            for (int part = 0; part < partitions; part++) {
                for (int i = 0; i < perPartition; i++) {
                    p.send(new ProducerRecord<>(topic, part, "k" + i, tag + "-" + part + "-" + i));
                }
            }
            p.flush();
        }
    }

    /** Consumer properties for a group protocol: "consumer" (KIP-848) or a classic assignor's name. */
    static Properties groupProps(String group, String protocol) {
        Properties props = Skiff.consumerProps(group);
        switch (protocol) {
            case "consumer" -> props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            case "range" -> props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
            case "roundrobin" -> props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RoundRobinAssignor.class.getName());
            case "cooperative-sticky" -> props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
            default -> throw new IllegalArgumentException(protocol);
        }
        if (!protocol.equals("consumer")) {
            // Members learn of a rebalance on their next heartbeat.
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "200");
        }
        return props;
    }

    static void pollUntil(String what, List<Member> members, java.util.function.BooleanSupplier cond) {
        Skiff.eventually(what, () -> {
            members.forEach(Member::poll);
            return cond.getAsBoolean();
        }, members::toString);
    }

    static Map<Integer, Long> committed(String group) throws Exception {
        Map<Integer, Long> m = new HashMap<>();
        admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                .forEach((tp, om) -> m.put(tp.partition(), om.offset()));
        return m;
    }

    /**
     * Two members share a topic under each protocol: the first owns every
     * partition, the second's arrival splits them two and two, the
     * listener sees the first give up all four (eager) or only the two that
     * moved (cooperative-sticky and KIP-848), the broker's description
     * matches the members' own views, every record is read exactly once by
     * its partition's owner, and commitSync and commitAsync both land.
     */
    @ParameterizedTest
    @ValueSource(strings = {"range", "roundrobin", "cooperative-sticky", "consumer"})
    void twoMembersShareATopic(String protocol) throws Exception {
        String topic = Skiff.name("share-" + protocol);
        String group = Skiff.name("share-group-" + protocol);
        Skiff.createTopic(admin, topic, PARTITIONS, null);
        Set<Integer> all = Set.of(0, 1, 2, 3);
        try (Member a = new Member("a", groupProps(group, protocol), topic)) {
            pollUntil("a owns every partition", List.of(a), () -> a.owned.equals(all));
            try (Member b = new Member("b", groupProps(group, protocol), topic)) {
                List<Member> both = List.of(a, b);
                pollUntil("a and b own two partitions each", both,
                        () -> a.owned.size() == 2 && b.owned.size() == 2 && a.assignment().equals(a.owned) && b.assignment().equals(b.owned));
                Set<Integer> union = new TreeSet<>(a.owned);
                union.addAll(b.owned);
                assertEquals(all, union, "a and b together: " + both);
                if (protocol.equals("range") || protocol.equals("roundrobin")) {
                    assertEquals(List.of(all), a.revocations, "eager: a gives up everything once");
                } else {
                    assertEquals(List.of(b.owned), a.revocations, "incremental: a gives up only what b took");
                }

                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                assertEquals(GroupState.STABLE, d.groupState());
                assertEquals(protocol.equals("consumer") ? GroupType.CONSUMER : GroupType.CLASSIC, d.type());
                if (!protocol.equals("consumer")) {
                    assertEquals(protocol, d.partitionAssignor());
                }
                Map<String, Set<Integer>> described = new HashMap<>();
                for (MemberDescription m : d.members()) {
                    described.put(m.consumerId(), Member.partitions(m.assignment().topicPartitions()));
                }
                assertEquals(Map.of(a.consumer.groupMetadata().memberId(), a.owned, b.consumer.groupMetadata().memberId(), b.owned),
                        described, "broker's description of the group");

                produce(topic, PARTITIONS, PER_PARTITION, "r");
                pollUntil("40 records between a and b", both, () -> a.records.size() + b.records.size() >= PARTITIONS * PER_PARTITION);
                Set<String> seen = new HashSet<>();
                for (Member m : both) {
                    for (ConsumerRecord<String, String> r : m.records) {
                        assertTrue(m.owned.contains(r.partition()), m.name + " read " + r + " from a partition it does not own");
                        assertTrue(seen.add(r.partition() + "@" + r.offset()), "read twice: " + r);
                        assertEquals("r-" + r.partition() + "-" + r.offset(), r.value());
                    }
                }
                assertEquals(PARTITIONS * PER_PARTITION, seen.size());

                a.consumer.commitSync();
                AtomicReference<Object> done = new AtomicReference<>();
                b.consumer.commitAsync((offsets, err) -> done.set(err == null ? offsets : err));
                pollUntil("b's commitAsync callback", both, () -> done.get() != null);
                assertTrue(done.get() instanceof Map, "commitAsync: " + done.get());
                assertEquals(Map.of(0, 10L, 1, 10L, 2, 10L, 3, 10L), committed(group));
            }
            pollUntil("a owns every partition again after b left", List.of(a), () -> a.owned.equals(all));
        }
    }

    /** seek, seekToBeginning and offsetsForTimes position an assigned consumer where they say. */
    @Test
    void seekAndOffsetsForTimes() throws Exception {
        String topic = Skiff.name("seek");
        Skiff.createTopic(admin, topic, 1, null);
        long base = System.currentTimeMillis() - 60_000;
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, 0, base + i * 1000L, "k" + i, "v" + i));
            }
            p.flush();
        }
        TopicPartition tp = Skiff.tp(topic, 0);
        try (KafkaConsumer<String, String> c = Skiff.consumer(null)) {
            c.assign(List.of(tp));
            c.seek(tp, 7);
            List<ConsumerRecord<String, String>> recs = Skiff.pollN(c, 3);
            assertEquals(List.of(7L, 8L, 9L), recs.stream().map(ConsumerRecord::offset).toList());
            assertEquals(10, c.position(tp));

            c.seekToBeginning(List.of(tp));
            assertEquals(0, c.position(tp));
            assertEquals("v0", Skiff.pollN(c, 10).get(0).value());

            Map<TopicPartition, OffsetAndTimestamp> at = c.offsetsForTimes(Map.of(tp, base + 4500));
            assertEquals(5, at.get(tp).offset());
            assertEquals(base + 5000, at.get(tp).timestamp());
            assertNull(c.offsetsForTimes(Map.of(tp, base + 60_000)).get(tp), "after the last timestamp");
            c.seek(tp, at.get(tp).offset());
            assertEquals("v5", Skiff.pollN(c, 5).get(0).value());
            assertEquals(Map.of(tp, 0L), c.beginningOffsets(List.of(tp)));
            assertEquals(Map.of(tp, 10L), c.endOffsets(List.of(tp)));
        }
    }

    /** A paused partition returns nothing while the others flow; resumed, it delivers from where it stopped. */
    @Test
    void pauseAndResume() throws Exception {
        String topic = Skiff.name("pause");
        Skiff.createTopic(admin, topic, 2, null);
        produce(topic, 2, PER_PARTITION, "p");
        TopicPartition p0 = Skiff.tp(topic, 0);
        TopicPartition p1 = Skiff.tp(topic, 1);
        try (KafkaConsumer<String, String> c = Skiff.consumer(null)) {
            c.assign(List.of(p0, p1));
            c.seekToBeginning(List.of(p0, p1));
            c.pause(List.of(p0));
            assertEquals(Set.of(p0), c.paused());
            List<ConsumerRecord<String, String>> recs = Skiff.pollN(c, PER_PARTITION);
            recs.forEach(r -> assertEquals(1, r.partition(), "polled " + r + " from the paused partition"));
            assertEquals(PER_PARTITION, c.position(p1));
            assertEquals(0, c.position(p0));
            for (int i = 0; i < 3; i++) {
                assertTrue(c.poll(Duration.ofMillis(50)).isEmpty(), "records while p0 is paused and p1 is drained");
            }
            c.resume(List.of(p0));
            recs = Skiff.pollN(c, PER_PARTITION);
            recs.forEach(r -> assertEquals(0, r.partition()));
            assertEquals(0, recs.get(0).offset());
        }
    }

    /**
     * A static member (group.instance.id) stays in the group when its
     * process closes, and its replacement with the same instance id takes
     * back the same partitions without a rebalance and resumes from the
     * commits.
     */
    @Test
    void staticMembership() throws Exception {
        String topic = Skiff.name("static");
        String group = Skiff.name("static-group");
        Skiff.createTopic(admin, topic, 2, null);
        produce(topic, 2, PER_PARTITION, "s1");
        Properties props = groupProps(group, "range");
        props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-1");
        props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "60000");
        String firstMember;
        try (Member m = new Member("static-1", props, topic)) {
            pollUntil("20 records", List.of(m), () -> m.records.size() >= 2 * PER_PARTITION);
            assertEquals(Set.of(0, 1), m.owned);
            m.consumer.commitSync();
            firstMember = m.consumer.groupMetadata().memberId();
        }
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        assertEquals(GroupState.STABLE, d.groupState(), "a closed static member does not leave");
        assertEquals(1, d.members().size());
        MemberDescription md = d.members().iterator().next();
        assertEquals("instance-1", md.groupInstanceId().orElse(null));
        assertEquals(firstMember, md.consumerId());

        produce(topic, 2, PER_PARTITION, "s2");
        try (Member m = new Member("static-2", props, topic)) {
            pollUntil("the 20 new records", List.of(m), () -> m.records.size() >= 2 * PER_PARTITION);
            assertEquals(List.of(Set.of(0, 1)), m.assignments);
            for (ConsumerRecord<String, String> r : m.records) {
                assertTrue(r.offset() >= PER_PARTITION, "re-read committed record " + r);
                assertTrue(r.value().startsWith("s2-"), r.toString());
            }
            d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            assertEquals(1, d.members().size());
            md = d.members().iterator().next();
            assertEquals("instance-1", md.groupInstanceId().orElse(null));
            assertEquals(m.consumer.groupMetadata().memberId(), md.consumerId());
            assertTrue(!firstMember.equals(md.consumerId()), "the replacement got a new member id");
            assertEquals(Set.of(0, 1), Member.partitions(md.assignment().topicPartitions()));
        }
    }
}
