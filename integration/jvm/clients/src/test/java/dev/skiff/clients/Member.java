package dev.skiff.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

/**
 * A group member whose rebalance listener records what it is given and what
 * it gives up, and which keeps every record it polls. The test thread polls
 * all members in turn (a KafkaConsumer is single-threaded).
 */
final class Member implements ConsumerRebalanceListener, AutoCloseable {
    final String name;
    final KafkaConsumer<String, String> consumer;
    final Set<Integer> owned = new TreeSet<>();
    final List<Set<Integer>> revocations = new ArrayList<>();
    final List<Set<Integer>> assignments = new ArrayList<>();
    final List<ConsumerRecord<String, String>> records = new ArrayList<>();

    Member(String name, Properties props, String topic) {
        this.name = name;
        this.consumer = new KafkaConsumer<>(props);
        consumer.subscribe(List.of(topic), this);
    }

    static Set<Integer> partitions(Collection<TopicPartition> tps) {
        Set<Integer> s = new TreeSet<>();
        tps.forEach(tp -> s.add(tp.partition()));
        return s;
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> tps) {
        // The eager protocol calls this with nothing before the first assignment.
        if (!tps.isEmpty()) {
            revocations.add(partitions(tps));
            owned.removeAll(partitions(tps));
        }
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> tps) {
        assignments.add(partitions(tps));
        owned.addAll(partitions(tps));
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> tps) {
        throw new AssertionError(name + " lost partitions " + partitions(tps) + " without a revocation");
    }

    void poll() {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(50))) {
            records.add(r);
        }
    }

    /** The consumer's own view of its assignment, which must match the listener's. */
    Set<Integer> assignment() {
        return partitions(consumer.assignment());
    }

    @Override
    public String toString() {
        return name + " owns " + owned + " (assigned " + assignments + ", revoked " + revocations + ", " + records.size() + " records)";
    }

    @Override
    public void close() {
        consumer.close(Duration.ofSeconds(10));
    }
}
