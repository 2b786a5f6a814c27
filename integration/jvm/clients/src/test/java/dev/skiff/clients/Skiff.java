package dev.skiff.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * What every scenario shares: the broker under test (system property
 * skiff.bootstrap, set by integration/java_clients_test.go), unique names so
 * the test classes can share one broker, client factories, and a poll with a
 * deadline in place of sleeps.
 */
final class Skiff {
    private Skiff() {}

    /** A generous bound so a broken broker fails a scenario instead of hanging it. */
    static final Duration TIMEOUT = Duration.ofSeconds(60);

    static String bootstrap() {
        return System.getProperty("skiff.bootstrap", "127.0.0.1:9092");
    }

    /** A name no other scenario or run uses. */
    static String name(String what) {
        return what + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        return Admin.create(p);
    }

    static void createTopic(Admin admin, String topic, int partitions, Map<String, String> configs) throws Exception {
        NewTopic nt = new NewTopic(topic, partitions, (short) 1);
        if (configs != null) {
            nt.configs(configs);
        }
        admin.createTopics(List.of(nt)).all().get();
    }

    static Properties producerProps() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        return p;
    }

    static KafkaProducer<String, String> producer() {
        return new KafkaProducer<>(producerProps());
    }

    static Properties consumerProps(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return p;
    }

    static KafkaConsumer<String, String> consumer(String group) {
        return new KafkaConsumer<>(consumerProps(group));
    }

    /** Polls cond every 20ms until it holds; fails after TIMEOUT with what. */
    static void eventually(String what, BooleanSupplier cond) {
        eventually(what, TIMEOUT, cond);
    }

    /** Polls cond every 20ms until it holds; fails after timeout with what. */
    static void eventually(String what, Duration timeout, BooleanSupplier cond) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + timeout + " waiting for " + what);
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for " + what);
            }
        }
    }

    /** Like eventually, with a description of the last state for the failure. */
    static void eventually(String what, BooleanSupplier cond, Supplier<String> state) {
        eventually(what, TIMEOUT, cond, state);
    }

    /** Like eventually with a timeout, with a description of the last state for the failure. */
    static void eventually(String what, Duration timeout, BooleanSupplier cond, Supplier<String> state) {
        try {
            eventually(what, timeout, cond);
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; last state: " + state.get(), e);
        }
    }

    /** Polls c until it has returned n records (failing on more), in poll order. */
    static <K, V> List<ConsumerRecord<K, V>> pollN(KafkaConsumer<K, V> c, int n) {
        List<ConsumerRecord<K, V>> out = new ArrayList<>();
        eventually(n + " records", () -> {
            for (ConsumerRecord<K, V> r : c.poll(Duration.ofMillis(100))) {
                out.add(r);
            }
            return out.size() >= n;
        }, () -> out.size() + " records");
        if (out.size() != n) {
            throw new AssertionError("read " + out.size() + " records, want " + n + ": " + out);
        }
        return out;
    }

    /** Groups records by partition, each list in offset order as polled. */
    static <K, V> Map<Integer, List<ConsumerRecord<K, V>>> byPartition(List<ConsumerRecord<K, V>> recs) {
        Map<Integer, List<ConsumerRecord<K, V>>> m = new HashMap<>();
        for (ConsumerRecord<K, V> r : recs) {
            m.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
        }
        return m;
    }

    static TopicPartition tp(String topic, int p) {
        return new TopicPartition(topic, p);
    }
}
