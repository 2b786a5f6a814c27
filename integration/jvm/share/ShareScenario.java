import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;

import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Drives a KafkaShareConsumer with explicit acknowledgement through one phase
 * of integration/java_share_test.go and prints what it saw, one line each:
 * RECORD offset deliveryCount, COMMIT ok|ExceptionClass, EMPTY.
 *
 * usage: ShareScenario bootstrap topic group phase lockMs
 *   phase "before": 5 records delivered; the lock expires before they are
 *     acknowledged (the late ACCEPT fails); redelivered with count 2; then
 *     ACCEPT 0, RELEASE 1, REJECT 2, ACCEPT 3-4.
 *   phase "after" (a restarted broker): offset 1 comes with count 3; RELEASE
 *     archives it at the delivery limit 3; nothing is delivered afterwards.
 */
public class ShareScenario {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], phase = args[3];
        long lockMs = Long.parseLong(args[4]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", group);
        p.put("share.acknowledgement.mode", "explicit");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaShareConsumer<String, String> c = new KafkaShareConsumer<>(p)) {
            c.subscribe(List.of(topic));
            if (phase.equals("before")) {
                List<ConsumerRecord<String, String>> got = pollAtLeast(c, 5);
                Thread.sleep(lockMs * 3); // the acquisition lock ends meanwhile
                for (ConsumerRecord<String, String> r : got) {
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                commit(c);
                got = pollAtLeast(c, 5);
                for (ConsumerRecord<String, String> r : got) {
                    AcknowledgeType t = switch ((int) r.offset()) {
                        case 1 -> AcknowledgeType.RELEASE;
                        case 2 -> AcknowledgeType.REJECT;
                        default -> AcknowledgeType.ACCEPT;
                    };
                    c.acknowledge(r, t);
                }
                commit(c);
            } else {
                List<ConsumerRecord<String, String>> got = pollAtLeast(c, 1);
                for (ConsumerRecord<String, String> r : got) {
                    c.acknowledge(r, AcknowledgeType.RELEASE);
                }
                commit(c);
                long end = System.currentTimeMillis() + lockMs * 3;
                while (System.currentTimeMillis() < end) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        print(r);
                        c.acknowledge(r, AcknowledgeType.RELEASE);
                    }
                }
                System.out.println("EMPTY");
            }
        }
    }

    static List<ConsumerRecord<String, String>> pollAtLeast(KafkaShareConsumer<String, String> c, int n) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 60_000;
        while (got.size() < n && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                print(r);
                got.add(r);
            }
        }
        return got;
    }

    static void print(ConsumerRecord<String, String> r) {
        System.out.println("RECORD " + r.offset() + " " + r.deliveryCount().map(String::valueOf).orElse("?"));
    }

    static void commit(KafkaShareConsumer<String, String> c) {
        Map<TopicIdPartition, Optional<KafkaException>> res = c.commitSync();
        for (Optional<KafkaException> e : res.values()) {
            System.out.println("COMMIT " + e.map(x -> x.getClass().getSimpleName()).orElse("ok"));
        }
    }
}
