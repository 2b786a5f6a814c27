package dev.skiff.clients;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Java producer: its idempotent default, every codec, headers, nulls, and the size limit. */
class ProducerTest {
    static Admin admin;

    @BeforeAll
    static void setUp() {
        admin = Skiff.admin();
    }

    @AfterAll
    static void tearDown() {
        admin.close();
    }

    static String value(String codec, int p, int i) {
        return "value-" + codec + "-" + p + "-" + i + "-" + "x".repeat(64 + 7 * i);
    }

    /** The default producer (enable.idempotence=true, acks=all) writes under a producer id with sequences. */
    @Test
    void defaultProducerIsIdempotent() throws Exception {
        String topic = Skiff.name("idem");
        Skiff.createTopic(admin, topic, 1, null);
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            for (int i = 0; i < 20; i++) {
                RecordMetadata md = p.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get();
                assertEquals(i, md.offset());
            }
        }
        TopicPartition tp = Skiff.tp(topic, 0);
        List<ProducerState> states = admin.describeProducers(List.of(tp)).partitionResult(tp).get().activeProducers();
        assertEquals(1, states.size(), "active producers: " + states);
        ProducerState s = states.get(0);
        assertTrue(s.producerId() >= 0, "producer id " + s.producerId());
        assertEquals(19, s.lastSequence(), "last sequence of 20 idempotent records");
        assertTrue(s.currentTransactionStartOffset().isEmpty(), "not transactional: " + s);
    }

    /** Keys, values and headers survive each codec, partition by partition, at offsets 0..9. */
    @ParameterizedTest
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void codecRoundTrip(String codec) throws Exception {
        String topic = Skiff.name("codec-" + codec);
        Skiff.createTopic(admin, topic, 3, null);
        Properties props = Skiff.producerProps();
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        props.put(ProducerConfig.LINGER_MS_CONFIG, "50");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props)) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int part = 0; part < 3; part++) {
                for (int i = 0; i < 10; i++) {
                    ProducerRecord<String, String> r = new ProducerRecord<>(topic, part, "key-" + part + "-" + i, value(codec, part, i));
                    r.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    r.headers().add("codec", codec.getBytes(StandardCharsets.UTF_8));
                    fs.add(p.send(r));
                }
            }
            for (var f : fs) {
                f.get();
            }
        }
        try (KafkaConsumer<String, String> c = Skiff.consumer(null)) {
            List<TopicPartition> tps = List.of(Skiff.tp(topic, 0), Skiff.tp(topic, 1), Skiff.tp(topic, 2));
            c.assign(tps);
            c.seekToBeginning(tps);
            var parts = Skiff.byPartition(Skiff.pollN(c, 30));
            for (int part = 0; part < 3; part++) {
                List<ConsumerRecord<String, String>> recs = parts.get(part);
                assertEquals(10, recs.size(), "partition " + part);
                for (int i = 0; i < 10; i++) {
                    ConsumerRecord<String, String> r = recs.get(i);
                    assertEquals(i, r.offset());
                    assertEquals("key-" + part + "-" + i, r.key());
                    assertEquals(value(codec, part, i), r.value());
                    assertArrayEquals(Integer.toString(i).getBytes(StandardCharsets.UTF_8), r.headers().lastHeader("seq").value());
                    assertArrayEquals(codec.getBytes(StandardCharsets.UTF_8), r.headers().lastHeader("codec").value());
                }
            }
        }
    }

    /** Null keys, null values (tombstones), null and repeated header values come back as sent. */
    @Test
    void headersAndNulls() throws Exception {
        String topic = Skiff.name("nulls");
        Skiff.createTopic(admin, topic, 1, null);
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            ProducerRecord<String, String> r0 = new ProducerRecord<>(topic, 0, null, "no-key");
            ProducerRecord<String, String> r1 = new ProducerRecord<>(topic, 0, "tombstone", null);
            ProducerRecord<String, String> r2 = new ProducerRecord<>(topic, 0, (String) null, (String) null,
                    List.<Header>of(new RecordHeader("h", "a".getBytes(StandardCharsets.UTF_8)),
                            new RecordHeader("h", "b".getBytes(StandardCharsets.UTF_8)),
                            new RecordHeader("nullvalue", (byte[]) null),
                            new RecordHeader("empty", new byte[0])));
            p.send(r0).get();
            p.send(r1).get();
            p.send(r2).get();
        }
        try (KafkaConsumer<String, String> c = Skiff.consumer(null)) {
            c.assign(List.of(Skiff.tp(topic, 0)));
            c.seekToBeginning(List.of(Skiff.tp(topic, 0)));
            List<ConsumerRecord<String, String>> recs = Skiff.pollN(c, 3);
            assertNull(recs.get(0).key());
            assertEquals("no-key", recs.get(0).value());
            assertEquals("tombstone", recs.get(1).key());
            assertNull(recs.get(1).value());
            ConsumerRecord<String, String> r = recs.get(2);
            assertNull(r.key());
            assertNull(r.value());
            Header[] hs = r.headers().toArray();
            assertEquals(4, hs.length, "headers " + List.of(hs));
            assertEquals("h", hs[0].key());
            assertArrayEquals("a".getBytes(StandardCharsets.UTF_8), hs[0].value());
            assertEquals("h", hs[1].key());
            assertArrayEquals("b".getBytes(StandardCharsets.UTF_8), hs[1].value());
            assertEquals("nullvalue", hs[2].key());
            assertNull(hs[2].value());
            assertEquals("empty", hs[3].key());
            assertEquals(0, hs[3].value().length);
        }
    }

    /**
     * A batch of exactly max.message.bytes is accepted; one byte more is
     * refused with RecordTooLargeException (MESSAGE_TOO_LARGE) and leaves
     * nothing in the log.
     */
    @Test
    void recordAtAndOverMaxMessageBytes() throws Exception {
        int max = 10_000;
        String topic = Skiff.name("maxbytes");
        Skiff.createTopic(admin, topic, 1, Map.of("max.message.bytes", Integer.toString(max)));
        int valueLen = valueLenForBatch(max);
        Properties props = Skiff.producerProps();
        props.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        props.put(ProducerConfig.RETRIES_CONFIG, "0");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props)) {
            RecordMetadata md = p.send(new ProducerRecord<>(topic, 0, null, "a".repeat(valueLen))).get();
            assertEquals(0, md.offset());
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> p.send(new ProducerRecord<>(topic, 0, null, "b".repeat(valueLen + 1))).get());
            assertInstanceOf(RecordTooLargeException.class, e.getCause(), "over max.message.bytes: " + e);
        }
        TopicPartition tp = Skiff.tp(topic, 0);
        long end = admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get().offset();
        assertEquals(1, end, "log end offset after one accepted and one refused record");
        try (KafkaConsumer<String, String> c = Skiff.consumer(null)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            ConsumerRecord<String, String> r = Skiff.pollN(c, 1).get(0);
            assertEquals(valueLen, r.value().length());
        }
    }

    /** The fixed part of a v2 record batch, before its records (KIP-98). */
    static final int BATCH_OVERHEAD = 61;

    /**
     * The value length that makes a one-record, uncompressed, null-key,
     * header-less batch exactly size bytes. Computed from the v2 format
     * here, because the client's own size helpers are internal classes that
     * moved between releases.
     */
    static int valueLenForBatch(int size) {
        for (int n = size - BATCH_OVERHEAD; n > 0; n--) {
            // attributes, timestamp delta 0, offset delta 0, key length -1,
            // value length, value, header count 0.
            int body = 1 + 1 + 1 + 1 + varintSize(n) + n + 1;
            int batch = BATCH_OVERHEAD + varintSize(body) + body;
            if (batch == size) {
                return n;
            }
            if (batch < size) {
                throw new AssertionError("no value length gives a batch of exactly " + size + " bytes");
            }
        }
        throw new AssertionError("unreachable");
    }

    /** The length of v as a zig-zag varint. */
    static int varintSize(int v) {
        int z = (v << 1) ^ (v >> 31);
        int n = 1;
        while ((z & 0xffffff80) != 0) {
            n++;
            z >>>= 7;
        }
        return n;
    }
}
