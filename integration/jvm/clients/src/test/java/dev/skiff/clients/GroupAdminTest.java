package dev.skiff.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The consumer-group admin calls, checked against what a real group consumed and committed. */
class GroupAdminTest {
    static Admin admin;

    @BeforeAll
    static void setUp() {
        admin = Skiff.admin();
    }

    @AfterAll
    static void tearDown() {
        admin.close();
    }

    static Map<Integer, Long> committed(String group) throws Exception {
        Map<Integer, Long> m = new HashMap<>();
        admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                .forEach((tp, om) -> m.put(tp.partition(), om.offset()));
        return m;
    }

    static boolean listed(String group) throws Exception {
        @SuppressWarnings("deprecation")
        Set<String> ids = admin.listConsumerGroups().all().get().stream().map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
        return ids.contains(group);
    }

    @Test
    void groupLifecycle() throws Exception {
        String topic = Skiff.name("ga");
        String group = Skiff.name("ga-group");
        Skiff.createTopic(admin, topic, 3, null);
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            for (int part = 0; part < 3; part++) {
                for (int i = 0; i < 10; i++) {
                    p.send(new ProducerRecord<>(topic, part, "k", part + "-" + i));
                }
            }
            p.flush();
        }
        try (KafkaConsumer<String, String> c = Skiff.consumer(group)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> recs = Skiff.pollN(c, 30);
            assertEquals(30, recs.stream().map(r -> r.partition() + "@" + r.offset()).distinct().count());
            c.commitSync();
            assertTrue(listed(group), group + " not listed while its member is polling");
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            assertEquals(GroupState.STABLE, d.groupState());
            assertEquals(1, d.members().size());
            MemberDescription m = d.members().iterator().next();
            assertEquals(Set.of(0, 1, 2), Member.partitions(m.assignment().topicPartitions()));
            assertEquals("range", d.partitionAssignor());
            assertEquals(Map.of(0, 10L, 1, 10L, 2, 10L), committed(group));
        }
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        assertEquals(GroupState.EMPTY, d.groupState(), "after the member left");
        assertEquals(0, d.members().size());

        TopicPartition p0 = Skiff.tp(topic, 0);
        TopicPartition p1 = Skiff.tp(topic, 1);
        admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(3))).all().get();
        assertEquals(Map.of(0, 3L, 1, 10L, 2, 10L), committed(group));
        admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all().get();
        assertEquals(Map.of(0, 3L, 2, 10L), committed(group));

        // A member resumes: partition 0 from the altered 3, partition 1 from
        // the beginning (auto.offset.reset), partition 2 has nothing left.
        try (KafkaConsumer<String, String> c = Skiff.consumer(group)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> recs = Skiff.pollN(c, 17);
            var parts = Skiff.byPartition(recs);
            assertEquals(7, parts.get(0).size());
            assertEquals(3, parts.get(0).get(0).offset());
            assertEquals(10, parts.get(1).size());
            assertEquals(0, parts.get(1).get(0).offset());
            assertFalse(parts.containsKey(2), "partition 2 was fully committed");
        }
        admin.deleteConsumerGroups(List.of(group)).all().get();
        assertFalse(listed(group), group + " listed after deleteConsumerGroups");
        assertEquals(Map.of(), committed(group));
    }
}
