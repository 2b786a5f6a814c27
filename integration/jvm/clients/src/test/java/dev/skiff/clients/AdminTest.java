package dev.skiff.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.SecurityDisabledException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * AdminClient against Skiff: topics by name and by id, partitions, cluster,
 * configs, offsets, records, log dirs, features and ACLs. The group and
 * transaction admin calls are in GroupAdminTest and TransactionTest.
 */
class AdminTest {
    static Admin admin;

    @BeforeAll
    static void setUp() {
        admin = Skiff.admin();
    }

    @AfterAll
    static void tearDown() {
        admin.close();
    }

    /** Create, describe and delete topics, once by name and once by topic id. */
    @Test
    void topicsByNameAndById() throws Exception {
        String byName = Skiff.name("by-name");
        String byId = Skiff.name("by-id");
        CreateTopicsResult created = admin.createTopics(List.of(
                new NewTopic(byName, 3, (short) 1), new NewTopic(byId, 2, (short) 1)));
        created.all().get();
        assertEquals(3, created.numPartitions(byName).get());
        Uuid id = created.topicId(byId).get();
        assertFalse(Uuid.ZERO_UUID.equals(id), "created topic has the zero id");

        Map<String, TopicDescription> byNames = admin.describeTopics(TopicCollection.ofTopicNames(List.of(byName, byId))).allTopicNames().get();
        assertEquals(3, byNames.get(byName).partitions().size());
        assertEquals(id, byNames.get(byId).topicId());
        Map<Uuid, TopicDescription> byIds = admin.describeTopics(TopicCollection.ofTopicIds(List.of(id))).allTopicIds().get();
        assertEquals(byId, byIds.get(id).name());
        assertEquals(2, byIds.get(id).partitions().size());
        for (var p : byIds.get(id).partitions()) {
            assertNotNull(p.leader(), "partition " + p.partition() + " has no leader");
            assertEquals(List.of(p.leader()), p.isr());
        }
        assertTrue(admin.listTopics().names().get().containsAll(List.of(byName, byId)));

        admin.deleteTopics(TopicCollection.ofTopicNames(List.of(byName))).all().get();
        admin.deleteTopics(TopicCollection.ofTopicIds(List.of(id))).all().get();
        Skiff.eventually("both topics gone from listTopics", () -> {
            try {
                Set<String> names = admin.listTopics().names().get();
                return !names.contains(byName) && !names.contains(byId);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> admin.describeTopics(TopicCollection.ofTopicNames(List.of(byName))).allTopicNames().get());
        assertInstanceOf(UnknownTopicOrPartitionException.class, e.getCause());
    }

    /** createPartitions grows a topic, and the new partition takes records. */
    @Test
    void createPartitions() throws Exception {
        String topic = Skiff.name("grow");
        Skiff.createTopic(admin, topic, 1, null);
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
        Skiff.eventually("4 partitions described", () -> {
            try {
                return admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size() == 4;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            assertEquals(0, p.send(new ProducerRecord<>(topic, 3, "k", "in-new-partition")).get().offset());
        }
        TopicPartition tp = Skiff.tp(topic, 3);
        assertEquals(1, admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get().offset());
    }

    /** describeCluster names one node, which is the controller and the topics' leader. */
    @Test
    void describeCluster() throws Exception {
        DescribeClusterResult c = admin.describeCluster();
        Collection<Node> nodes = c.nodes().get();
        assertEquals(1, nodes.size(), "nodes " + nodes);
        Node n = nodes.iterator().next();
        assertEquals(n.id(), c.controller().get().id());
        assertNotNull(c.clusterId().get());
        assertEquals(Skiff.bootstrap(), n.host() + ":" + n.port());
    }

    /** describeConfigs shows defaults and overrides; incrementalAlterConfigs sets, appends and deletes. */
    @Test
    void configs() throws Exception {
        String topic = Skiff.name("configs");
        Skiff.createTopic(admin, topic, 1, Map.of("retention.ms", "3600000"));
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
        assertEquals("3600000", cfg.get("retention.ms").value());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cfg.get("retention.ms").source());
        assertEquals("delete", cfg.get("cleanup.policy").value());
        assertTrue(cfg.get("cleanup.policy").isDefault());

        admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE),
                new AlterConfigOp(new ConfigEntry("segment.bytes", "1048576"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND)))).all().get();
        cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
        assertTrue(cfg.get("retention.ms").isDefault(), "retention.ms after DELETE: " + cfg.get("retention.ms"));
        assertEquals("604800000", cfg.get("retention.ms").value());
        assertEquals("1048576", cfg.get("segment.bytes").value());
        assertEquals("delete,compact", cfg.get("cleanup.policy").value());

        String broker = Integer.toString(admin.describeCluster().nodes().get().iterator().next().id());
        ConfigResource b = new ConfigResource(ConfigResource.Type.BROKER, broker);
        Config bc = admin.describeConfigs(List.of(b)).all().get().get(b);
        assertNotNull(bc.get("log.retention.ms"), "broker config log.retention.ms");
        assertNotNull(bc.get("message.max.bytes"), "broker config message.max.bytes");
    }

    /** listOffsets: earliest, latest, the record with the largest timestamp, and the first at or after a timestamp. */
    @Test
    void listOffsets() throws Exception {
        String topic = Skiff.name("offsets");
        Skiff.createTopic(admin, topic, 1, null);
        long base = System.currentTimeMillis() - 100_000;
        // Timestamps 0,10,..,90 seconds after base, but record 6 carries the largest.
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            for (int i = 0; i < 10; i++) {
                long ts = i == 6 ? base + 500_000 : base + i * 10_000L;
                p.send(new ProducerRecord<>(topic, 0, ts, "k" + i, "v" + i)).get();
            }
        }
        TopicPartition tp = Skiff.tp(topic, 0);
        assertEquals(0, offset(tp, OffsetSpec.earliest()).offset());
        assertEquals(10, offset(tp, OffsetSpec.latest()).offset());
        ListOffsetsResultInfo max = offset(tp, OffsetSpec.maxTimestamp());
        assertEquals(6, max.offset());
        assertEquals(base + 500_000, max.timestamp());
        ListOffsetsResultInfo at = offset(tp, OffsetSpec.forTimestamp(base + 25_000));
        assertEquals(3, at.offset(), "first record at or after base+25s");
        assertEquals(base + 30_000, at.timestamp());
        assertEquals(-1, offset(tp, OffsetSpec.forTimestamp(base + 600_000)).offset(), "past every timestamp");
    }

    static ListOffsetsResultInfo offset(TopicPartition tp, OffsetSpec spec) throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get();
    }

    /** deleteRecords moves the low watermark, and a consumer from the beginning starts there. */
    @Test
    void deleteRecords() throws Exception {
        String topic = Skiff.name("delrec");
        Skiff.createTopic(admin, topic, 1, null);
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get();
            }
        }
        TopicPartition tp = Skiff.tp(topic, 0);
        long low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp).get().lowWatermark();
        assertEquals(4, low);
        assertEquals(4, offset(tp, OffsetSpec.earliest()).offset());
        try (KafkaConsumer<String, String> c = Skiff.consumer(null)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            List<ConsumerRecord<String, String>> recs = Skiff.pollN(c, 6);
            assertEquals(4, recs.get(0).offset());
            assertEquals("v4", recs.get(0).value());
        }
    }

    /** describeLogDirs lists each partition of a topic, its size growing with the records written. */
    @Test
    void describeLogDirs() throws Exception {
        String topic = Skiff.name("logdirs");
        Skiff.createTopic(admin, topic, 2, null);
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            for (int i = 0; i < 50; i++) {
                p.send(new ProducerRecord<>(topic, 1, "k" + i, "x".repeat(100))).get();
            }
        }
        int broker = admin.describeCluster().nodes().get().iterator().next().id();
        Map<String, LogDirDescription> dirs = admin.describeLogDirs(List.of(broker)).allDescriptions().get().get(broker);
        assertEquals(1, dirs.size(), "log dirs " + dirs.keySet());
        LogDirDescription d = dirs.values().iterator().next();
        assertTrue(d.error() == null, "log dir error " + d.error());
        ReplicaInfo p0 = d.replicaInfos().get(Skiff.tp(topic, 0));
        ReplicaInfo p1 = d.replicaInfos().get(Skiff.tp(topic, 1));
        assertNotNull(p0, "partition 0 not listed");
        assertNotNull(p1, "partition 1 not listed");
        assertEquals(0, p0.size());
        assertTrue(p1.size() > 50 * 100, "partition 1 holds 50 records of 100 bytes but its size is " + p1.size());
    }

    /**
     * describeFeatures shows the feature levels Skiff finalizes
     * (server/features.go): metadata.version 27 (4.1-IV1), transaction.version 2
     * (KIP-890 part 2), group.version 1 (KIP-848), share.version 1 (KIP-932)
     * and streams.version 1 (KIP-1071), with their supported ranges, and
     * nothing it does not implement (no kraft.version, no ELR).
     */
    @Test
    void describeFeatures() throws Exception {
        FeatureMetadata f = admin.describeFeatures().featureMetadata().get();
        Map<String, String> finalized = new HashMap<>();
        f.finalizedFeatures().forEach((k, v) -> finalized.put(k, v.minVersionLevel() + ".." + v.maxVersionLevel()));
        assertEquals(Map.of("metadata.version", "27..27", "transaction.version", "2..2", "group.version", "1..1",
                "share.version", "1..1", "streams.version", "1..1"), finalized, "finalized features");
        Map<String, String> supported = new HashMap<>();
        f.supportedFeatures().forEach((k, v) -> supported.put(k, v.minVersion() + ".." + v.maxVersion()));
        assertEquals(Map.of("metadata.version", "27..27", "transaction.version", "0..2", "group.version", "0..1",
                "share.version", "0..1", "streams.version", "0..1"), supported, "supported features");
        assertTrue(f.finalizedFeaturesEpoch().isPresent() && f.finalizedFeaturesEpoch().get() >= 0,
                "finalized features epoch " + f.finalizedFeaturesEpoch());
    }

    /** Without an authorizer, describeAcls fails as Kafka's does: SecurityDisabledException. */
    @Test
    void describeAclsWithoutAuthorizer() {
        ExecutionException e = assertThrows(ExecutionException.class, () -> admin.describeAcls(AclBindingFilter.ANY).values().get());
        assertInstanceOf(SecurityDisabledException.class, e.getCause());
    }
}
