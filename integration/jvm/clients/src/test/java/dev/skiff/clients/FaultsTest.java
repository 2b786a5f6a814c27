package dev.skiff.clients;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Issue 17, acceptance 2, from Java: faults injected through Skiff's
 * test-control HTTP API (system property skiff.control, its base URL) are
 * hit, and the Java producer and consumer recover with every record once.
 */
class FaultsTest {
    static final int N = 20;
    static final HttpClient HTTP = HttpClient.newHttpClient();

    static String control() {
        String url = System.getProperty("skiff.control", "");
        Assumptions.assumeFalse(url.isEmpty(), "skiff.control not set: the broker has no test-control API");
        return url;
    }

    record Reply(int status, String body) {}

    static Reply call(String method, String url, String json) throws Exception {
        HttpRequest.BodyPublisher body = json == null
                ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString(json);
        HttpRequest req = HttpRequest.newBuilder(URI.create(url))
                .method(method, body)
                .header("Content-Type", "application/json")
                .timeout(Skiff.TIMEOUT)
                .build();
        HttpResponse<String> resp = HTTP.send(req, HttpResponse.BodyHandlers.ofString());
        return new Reply(resp.statusCode(), resp.body());
    }

    /** Posts a fault and returns its id, failing unless it was created. */
    static long inject(String control, String json) throws Exception {
        Reply r = call("POST", control + "/v1/faults", json);
        assertEquals(201, r.status(), "POST /v1/faults " + json + ": " + r.body());
        Matcher m = Pattern.compile("\"id\":(\\d+)").matcher(r.body());
        if (!m.find()) {
            throw new AssertionError("POST /v1/faults answered without an id: " + r.body());
        }
        return Long.parseLong(m.group(1));
    }

    /** How many requests of api the broker lists as hit by fault id. */
    static int hits(String control, String api, long id) throws Exception {
        Reply r = call("GET", control + "/v1/requests?api=" + api, null);
        assertEquals(200, r.status(), "GET /v1/requests: " + r.body());
        Matcher m = Pattern.compile("\"fault_id\":" + id + "[,}]").matcher(r.body());
        int n = 0;
        while (m.find()) {
            n++;
        }
        return n;
    }

    /**
     * Produce answered NOT_LEADER_OR_FOLLOWER three times, then the first
     * fetch's connection closed: the idempotent acks=all producer delivers
     * every record once, in order, and a group consumer reads them once.
     */
    @Test
    void clientsRecoverFromInjectedFaults() throws Exception {
        String control = control();
        String topic = Skiff.name("faults");
        TopicPartition tp = Skiff.tp(topic, 0);
        try (Admin admin = Skiff.admin()) {
            Skiff.createTopic(admin, topic, 1, null);

            long produceFault = inject(control, "{\"api\":\"Produce\",\"topic\":\"" + topic
                    + "\",\"error\":\"NOT_LEADER_OR_FOLLOWER\",\"times\":3}");
            Properties props = Skiff.producerProps();
            props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            props.put(ProducerConfig.ACKS_CONFIG, "all");
            List<RecordMetadata> acked = new ArrayList<>();
            try (KafkaProducer<String, String> p = new KafkaProducer<>(props)) {
                List<Future<RecordMetadata>> sent = new ArrayList<>();
                for (int i = 0; i < N; i++) {
                    sent.add(p.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)));
                }
                for (Future<RecordMetadata> f : sent) {
                    acked.add(f.get());
                }
            }
            for (int i = 0; i < N; i++) {
                assertEquals(i, acked.get(i).offset(), "offset acknowledged for record " + i);
            }
            assertEquals(3, hits(control, "Produce", produceFault), "produce requests answered by the fault");
            // Spent after three hits, so the fault is gone.
            assertEquals(404, call("DELETE", control + "/v1/faults/" + produceFault, null).status(),
                    "DELETE of a spent fault");
            long end = admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get().offset();
            assertEquals(N, end, "end offset: a retried batch was appended twice or lost");

            long fetchFault = inject(control, "{\"api\":\"Fetch\",\"topic\":\"" + topic
                    + "\",\"action\":\"close\",\"times\":1}");
            try (KafkaConsumer<String, String> c = Skiff.consumer(topic + "-g")) {
                c.subscribe(List.of(topic));
                List<ConsumerRecord<String, String>> recs = Skiff.pollN(c, N);
                for (int i = 0; i < N; i++) {
                    assertEquals(i, recs.get(i).offset(), "offset of record " + i);
                    assertEquals("v" + i, recs.get(i).value(), "value at offset " + i);
                }
            }
            assertEquals(1, hits(control, "Fetch", fetchFault), "fetches whose connection the fault closed");
        }
    }
}
