package dev.skiff.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Transactions from the Java producer, and the admin calls that inspect and end them. */
class TransactionTest {
    static Admin admin;

    @BeforeAll
    static void setUp() {
        admin = Skiff.admin();
    }

    @AfterAll
    static void tearDown() {
        admin.close();
    }

    static KafkaProducer<String, String> txnProducer(String txid) {
        Properties p = Skiff.producerProps();
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "30000");
        KafkaProducer<String, String> prod = new KafkaProducer<>(p);
        prod.initTransactions();
        return prod;
    }

    static KafkaConsumer<String, String> readCommitted(String group) {
        Properties p = Skiff.consumerProps(group);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        return new KafkaConsumer<>(p);
    }

    /** Every value in a partition, read from the start to the end offset under the isolation level. */
    static List<String> readAll(TopicPartition tp, boolean committed) throws Exception {
        long end = admin.listOffsets(Map.of(tp, OffsetSpec.latest()),
                new ListOffsetsOptions(committed ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED))
                .partitionResult(tp).get().offset();
        Properties props = Skiff.consumerProps(null);
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, committed ? "read_committed" : "read_uncommitted");
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            Skiff.eventually("position " + end + " of " + tp, () -> {
                for (ConsumerRecord<String, String> r : c.poll(java.time.Duration.ofMillis(50))) {
                    out.add(r.value());
                }
                return c.position(tp) >= end;
            }, out::toString);
        }
        return out;
    }

    static Map<Integer, Long> committed(String group) throws Exception {
        Map<Integer, Long> m = new HashMap<>();
        admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                .forEach((tp, om) -> m.put(tp.partition(), om.offset()));
        return m;
    }

    /**
     * Consume-transform-produce: input read by a read_committed consumer,
     * transformed records and the input offsets committed in one
     * transaction; a second transaction with offsets is aborted and changes
     * neither the output nor the group's offsets.
     */
    @Test
    void consumeTransformProduce() throws Exception {
        String in = Skiff.name("ctp-in");
        String out = Skiff.name("ctp-out");
        String group = Skiff.name("ctp-group");
        Skiff.createTopic(admin, in, 1, null);
        Skiff.createTopic(admin, out, 1, null);
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(in, 0, "k" + i, "word" + i));
            }
            p.flush();
        }
        try (KafkaProducer<String, String> txn = txnProducer(Skiff.name("ctp-txid"));
             KafkaConsumer<String, String> c = readCommitted(group)) {
            c.subscribe(List.of(in));
            List<ConsumerRecord<String, String>> recs = Skiff.pollN(c, 10);
            txn.beginTransaction();
            for (ConsumerRecord<String, String> r : recs) {
                txn.send(new ProducerRecord<>(out, 0, r.key(), r.value().toUpperCase()));
            }
            txn.sendOffsetsToTransaction(Map.of(Skiff.tp(in, 0), new OffsetAndMetadata(recs.get(9).offset() + 1)), c.groupMetadata());
            txn.commitTransaction();
            assertEquals(Map.of(0, 10L), committed(group));

            txn.beginTransaction();
            txn.send(new ProducerRecord<>(out, 0, "k", "ABORTED"));
            txn.sendOffsetsToTransaction(Map.of(Skiff.tp(in, 0), new OffsetAndMetadata(3)), c.groupMetadata());
            txn.flush();
            txn.abortTransaction();
        }
        assertEquals(Map.of(0, 10L), committed(group), "offsets after the aborted transaction");
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            want.add("WORD" + i);
        }
        assertEquals(want, readAll(Skiff.tp(out, 0), true));
        List<String> uncommitted = new ArrayList<>(want);
        uncommitted.add("ABORTED");
        assertEquals(uncommitted, readAll(Skiff.tp(out, 0), false));
    }

    /** read_committed skips an aborted transaction between two committed ones; read_uncommitted sees all three. */
    @Test
    void readCommittedHidesAborted() throws Exception {
        String topic = Skiff.name("rc");
        Skiff.createTopic(admin, topic, 1, null);
        try (KafkaProducer<String, String> txn = txnProducer(Skiff.name("rc-txid"))) {
            for (String tag : List.of("c1", "a", "c2")) {
                txn.beginTransaction();
                for (int i = 0; i < 3; i++) {
                    txn.send(new ProducerRecord<>(topic, 0, null, tag + "-" + i));
                }
                // Flushed first: abortTransaction drops records still in the
                // producer's buffer, and the broker must see these.
                txn.flush();
                if (tag.equals("a")) {
                    txn.abortTransaction();
                } else {
                    txn.commitTransaction();
                }
            }
        }
        TopicPartition tp = Skiff.tp(topic, 0);
        assertEquals(List.of("c1-0", "c1-1", "c1-2", "c2-0", "c2-1", "c2-2"), readAll(tp, true));
        assertEquals(List.of("c1-0", "c1-1", "c1-2", "a-0", "a-1", "a-2", "c2-0", "c2-1", "c2-2"), readAll(tp, false));
        // Nine records and three markers.
        assertEquals(12, admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get().offset());
    }

    /** A second producer with the same transactional.id fences the first and aborts its open transaction. */
    @Test
    void sameTransactionalIdFences() throws Exception {
        String topic = Skiff.name("fence");
        String txid = Skiff.name("fence-txid");
        Skiff.createTopic(admin, topic, 1, null);
        try (KafkaProducer<String, String> first = txnProducer(txid)) {
            first.beginTransaction();
            first.send(new ProducerRecord<>(topic, 0, null, "from-first")).get();
            try (KafkaProducer<String, String> second = txnProducer(txid)) {
                second.beginTransaction();
                second.send(new ProducerRecord<>(topic, 0, null, "from-second"));
                second.commitTransaction();
            }
            KafkaException e = assertThrows(KafkaException.class, first::commitTransaction);
            assertTrue(e instanceof ProducerFencedException || e.getCause() instanceof ProducerFencedException,
                    "the fenced producer's commit: " + e);
        }
        TopicPartition tp = Skiff.tp(topic, 0);
        assertEquals(List.of("from-second"), readAll(tp, true));
        assertEquals(List.of("from-first", "from-second"), readAll(tp, false));
    }

    /**
     * With transaction.version 2 finalized, the Java producer uses
     * transactions v2 (KIP-890 part 2, issue 15 acceptance 3): describeFeatures
     * shows the level, and every commit or abort is an EndTxn v5, which alone
     * bumps the producer epoch: describeTransactions shows one bump per
     * transaction (a v1 producer keeps its epoch). The partitions join each
     * transaction through Produce v12 alone, and read_committed sees the
     * committed transactions only.
     */
    @Test
    void transactionV2BumpsEpochPerTransaction() throws Exception {
        var tv = admin.describeFeatures().featureMetadata().get().finalizedFeatures().get("transaction.version");
        assertEquals((short) 2, tv.maxVersionLevel(), "finalized transaction.version");
        String topic = Skiff.name("txv2");
        String txid = Skiff.name("txv2-txid");
        Skiff.createTopic(admin, topic, 1, null);
        TopicPartition tp = new TopicPartition(topic, 0);
        List<Short> epochs = new ArrayList<>();
        try (KafkaProducer<String, String> prod = txnProducer(txid)) {
            for (int i = 0; i < 3; i++) {
                prod.beginTransaction();
                prod.send(new ProducerRecord<>(topic, 0, null, "v" + i)).get();
                if (i == 1) {
                    prod.abortTransaction();
                } else {
                    prod.commitTransaction();
                }
                TransactionDescription d = admin.describeTransactions(List.of(txid)).description(txid).get();
                epochs.add((short) d.producerEpoch());
            }
        }
        assertEquals(List.of(epochs.get(0), (short) (epochs.get(0) + 1), (short) (epochs.get(0) + 2)), epochs,
                "producer epoch after each transaction");
        assertEquals(List.of("v0", "v2"), readAll(tp, true));
    }

    /**
     * The transaction admin calls on an open transaction: listTransactions
     * and describeTransactions show it Ongoing on its partition,
     * describeProducers shows where it started, abortTransaction writes the
     * abort marker so the last stable offset moves past it, and
     * fenceProducers bumps the epoch so the producer's commit fails.
     */
    @Test
    void transactionAdmin() throws Exception {
        String topic = Skiff.name("txadm");
        String txid = Skiff.name("txadm-txid");
        Skiff.createTopic(admin, topic, 1, null);
        TopicPartition tp = Skiff.tp(topic, 0);
        try (KafkaProducer<String, String> p = Skiff.producer()) {
            p.send(new ProducerRecord<>(topic, 0, null, "before")).get();
        }
        try (KafkaProducer<String, String> txn = txnProducer(txid)) {
            txn.beginTransaction();
            txn.send(new ProducerRecord<>(topic, 0, null, "hanging")).get();

            TransactionDescription desc = admin.describeTransactions(List.of(txid)).description(txid).get();
            assertEquals(TransactionState.ONGOING, desc.state());
            assertEquals(Set.of(tp), desc.topicPartitions());
            TransactionListing listing = admin.listTransactions().all().get().stream()
                    .filter(l -> l.transactionalId().equals(txid)).findFirst().orElseThrow(() -> new AssertionError(txid + " not listed"));
            assertEquals(TransactionState.ONGOING, listing.state());
            assertEquals(desc.producerId(), listing.producerId());

            ProducerState ps = admin.describeProducers(List.of(tp)).partitionResult(tp).get().activeProducers().stream()
                    .filter(s -> s.producerId() == desc.producerId()).findFirst()
                    .orElseThrow(() -> new AssertionError("producer " + desc.producerId() + " not active on " + tp));
            assertEquals(1L, ps.currentTransactionStartOffset().orElse(-1), "the open transaction starts at offset 1");
            assertEquals(desc.producerEpoch(), ps.producerEpoch());
            assertEquals(1, admin.listOffsets(Map.of(tp, OffsetSpec.latest()), new ListOffsetsOptions(IsolationLevel.READ_COMMITTED))
                    .partitionResult(tp).get().offset(), "last stable offset while the transaction is open");

            admin.abortTransaction(new AbortTransactionSpec(tp, ps.producerId(), (short) ps.producerEpoch(),
                    ps.coordinatorEpoch().orElse(0))).all().get();
            assertEquals(3, admin.listOffsets(Map.of(tp, OffsetSpec.latest()), new ListOffsetsOptions(IsolationLevel.READ_COMMITTED))
                    .partitionResult(tp).get().offset(), "last stable offset after abortTransaction wrote the marker");
            assertEquals(List.of("before"), readAll(tp, true));

            admin.fenceProducers(List.of(txid)).all().get();
            TransactionDescription fenced = admin.describeTransactions(List.of(txid)).description(txid).get();
            assertTrue(fenced.producerEpoch() > desc.producerEpoch(), "epoch " + desc.producerEpoch() + " -> " + fenced.producerEpoch());
            assertTrue(fenced.state() == TransactionState.COMPLETE_ABORT || fenced.state() == TransactionState.EMPTY,
                    "state after fenceProducers: " + fenced.state());
            KafkaException e = assertThrows(KafkaException.class, txn::commitTransaction);
            assertTrue(e instanceof ProducerFencedException || e.getCause() instanceof ProducerFencedException,
                    "commit after fenceProducers: " + e);
        }
        assertEquals(List.of("before"), readAll(tp, true));
    }
}
