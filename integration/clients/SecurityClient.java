// Produces and consumes through a secured listener with Apache Kafka's Java
// client, for integration/security_java_test.go. Run as a single source
// file: java -cp <kafka-clients classpath> SecurityClient.java BOOTSTRAP
// TOPIC PROPERTIES_FILE roundtrip|expect-auth-failure
//
// roundtrip produces three records and reads them back, printing
// "consumed a,b,c"; expect-auth-failure expects the producer to fail with
// SaslAuthenticationException and prints "auth-failed: <message>".
import java.io.FileReader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class SecurityClient {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader r = new FileReader(args[2])) {
            props.load(r);
        }
        props.put("bootstrap.servers", args[0]);
        String topic = args[1];
        boolean expectFailure = args[3].equals("expect-auth-failure");
        props.put("max.block.ms", "20000");
        props.put("delivery.timeout.ms", "20000");
        props.put("request.timeout.ms", "10000");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props, new StringSerializer(), new StringSerializer())) {
            for (String v : new String[] {"a", "b", "c"}) {
                p.send(new ProducerRecord<>(topic, v)).get();
            }
        } catch (ExecutionException | SaslAuthenticationException e) {
            Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
            if (expectFailure && cause instanceof SaslAuthenticationException) {
                System.out.println("auth-failed: " + cause.getMessage());
                return;
            }
            throw e;
        }
        if (expectFailure) {
            System.err.println("produced with bad credentials");
            System.exit(1);
        }
        props.put("group.id", topic + "-java");
        props.put("auto.offset.reset", "earliest");
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            List<String> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 60000;
            while (got.size() < 3 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> rec : c.poll(Duration.ofMillis(500))) {
                    got.add(rec.value());
                }
            }
            System.out.println("consumed " + String.join(",", got));
        }
    }
}
