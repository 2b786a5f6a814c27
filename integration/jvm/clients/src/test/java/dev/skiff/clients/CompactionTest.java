package dev.skiff.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Issue 12, acceptance 1, the Java half: a keyed topic of many records
 * (skiff.compaction.records, 1M in CI) over 10k keys, compacted by the
 * broker's own cleaner, read from offset 0 by the Java consumer, holds
 * exactly the latest value of each key at the offset it was written to.
 * The Go side starts the broker with log.cleaner.backoff.ms small so the
 * cleaner looks for work at once.
 */
class CompactionTest {
    static final int KEYS = 10_000;
    /** Two records this big fill a 1 MiB segment each, so the keyed data is sealed and cleanable. */
    static final int SENTINEL_BYTES = 700 << 10;
    static final Duration COMPACTION_TIMEOUT = Duration.ofMinutes(5);

    static String key(int i) {
        return String.format("key-%05d", i % KEYS);
    }

    static String value(long i) {
        return String.format("value-%07d", i);
    }

    @Test
    void compactedTopicKeepsLatestValuePerKey() throws Exception {
        int n = Integer.getInteger("skiff.compaction.records", 0);
        Assumptions.assumeTrue(n > 0, "skiff.compaction.records not set: the Go test runs this at one client version");
        String topic = Skiff.name("table");
        TopicPartition tp = Skiff.tp(topic, 0);
        try (Admin admin = Skiff.admin()) {
            Skiff.createTopic(admin, topic, 1, Map.of(
                    "cleanup.policy", "compact",
                    "segment.bytes", String.valueOf(1 << 20)));

            // A fast producer: large lz4 batches, sent without waiting. The
            // callbacks record the offset each key was last written at.
            Properties props = Skiff.producerProps();
            props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
            props.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(256 << 10));
            props.put(ProducerConfig.LINGER_MS_CONFIG, "20");
            props.put(ProducerConfig.BUFFER_MEMORY_CONFIG, String.valueOf(64 << 20));
            AtomicLongArray latest = new AtomicLongArray(KEYS);
            for (int k = 0; k < KEYS; k++) {
                latest.set(k, -1);
            }
            AtomicReference<Exception> failed = new AtomicReference<>();
            long last;
            long start = System.nanoTime();
            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props)) {
                for (int i = 0; i < n; i++) {
                    int k = i % KEYS;
                    p.send(new ProducerRecord<>(topic, 0, key(i).getBytes(StandardCharsets.UTF_8),
                            value(i).getBytes(StandardCharsets.UTF_8)), (md, e) -> {
                                if (e != null) {
                                    failed.compareAndSet(null, e);
                                    return;
                                }
                                latest.accumulateAndGet(k, md.offset(), Math::max);
                            });
                }
                p.flush();
                if (failed.get() != null) {
                    throw new AssertionError("produce failed", failed.get());
                }
                // The active segment is never cleaned: two large records
                // under their own key start a new one after the keyed data.
                byte[] big = new byte[SENTINEL_BYTES];
                new Random(12).nextBytes(big);
                p.send(new ProducerRecord<>(topic, 0, "sentinel".getBytes(StandardCharsets.UTF_8), big)).get();
                last = p.send(new ProducerRecord<>(topic, 0, "sentinel".getBytes(StandardCharsets.UTF_8), big)).get().offset();
            }
            System.out.printf("CompactionTest: produced %d records in %d ms%n", n, (System.nanoTime() - start) / 1_000_000);
            for (int k = 0; k < Math.min(n, KEYS); k++) {
                assertTrue(latest.get(k) >= 0, "no acknowledgement for key " + k);
            }

            long before = size(admin, tp);
            // Left after cleaning: the two sentinels and 10k small records.
            long want = 2L * SENTINEL_BYTES + (200 << 10);
            long compactStart = System.nanoTime();
            Skiff.eventually("compaction of " + tp, COMPACTION_TIMEOUT, () -> size(admin, tp) < want,
                    () -> "size " + size(admin, tp) + ", want below " + want);
            // The size can pass the mark with a small dirty tail left for
            // the next pass, so wait for the record count too: one per key
            // and the two sentinels.
            int wantRecords = Math.min(n, KEYS) + 2;
            AtomicReference<List<ConsumerRecord<byte[], byte[]>>> read = new AtomicReference<>();
            int[] scans = {0};
            Skiff.eventually("one record per key in " + tp, COMPACTION_TIMEOUT, () -> {
                read.set(readFromZero(tp, last));
                scans[0]++;
                return read.get().size() <= wantRecords;
            }, () -> read.get().size() + " records, want " + wantRecords);
            System.out.printf("CompactionTest: %s holds %d bytes after the produce (the cleaner runs meanwhile), %d after %d ms more (%d scans)%n", tp, before,
                    size(admin, tp), (System.nanoTime() - compactStart) / 1_000_000, scans[0]);

            Map<String, Long> seen = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> r : read.get()) {
                String k = new String(r.key(), StandardCharsets.UTF_8);
                if (k.equals("sentinel")) {
                    continue;
                }
                Long dup = seen.put(k, r.offset());
                if (dup != null) {
                    throw new AssertionError("key " + k + " read twice, at offsets " + dup + " and " + r.offset());
                }
                // The producer wrote value(i) at offset i of the new topic.
                assertEquals(value(r.offset()), new String(r.value(), StandardCharsets.UTF_8),
                        "value of " + k + " at offset " + r.offset());
                int i = Integer.parseInt(k.substring("key-".length()));
                assertEquals(latest.get(i), r.offset(), "offset of " + k + ": not its last write");
            }
            assertEquals(Math.min(n, KEYS), seen.size(), "keys read back");
        }
    }

    /**
     * Reads tp from offset 0 through last with the Java consumer, failing on
     * an offset that does not grow.
     */
    static List<ConsumerRecord<byte[], byte[]>> readFromZero(TopicPartition tp, long last) {
        Properties props = Skiff.consumerProps(null);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10000");
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        long[] prev = {-1};
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props)) {
            c.assign(List.of(tp));
            c.seek(tp, 0);
            Skiff.eventually("read through offset " + last, COMPACTION_TIMEOUT, () -> {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    if (r.offset() <= prev[0]) {
                        throw new AssertionError("offset " + r.offset() + " after " + prev[0]);
                    }
                    prev[0] = r.offset();
                    out.add(r);
                }
                return prev[0] >= last;
            }, () -> "read through offset " + prev[0]);
        }
        return out;
    }

    /** The size DescribeLogDirs reports for tp on the one broker. */
    static long size(Admin admin, TopicPartition tp) {
        try {
            Node node = admin.describeCluster().nodes().get().iterator().next();
            Map<String, LogDirDescription> dirs = admin.describeLogDirs(List.of(node.id()))
                    .descriptions().get(node.id()).get();
            for (LogDirDescription d : dirs.values()) {
                ReplicaInfo r = d.replicaInfos().get(tp);
                if (r != null) {
                    return r.size();
                }
            }
        } catch (Exception e) {
            throw new AssertionError("describe log dirs: " + e, e);
        }
        throw new AssertionError(tp + " is in no log dir");
    }
}
