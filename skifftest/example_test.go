package skifftest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/skiffmq/skiff/skifftest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// In a test, skifftest.New(t, ...) starts the broker and stops it when the
// test ends; Start and Close do the same outside one.
func Example_franzGo() {
	b, err := skifftest.Start(skifftest.Topic("orders", 3, nil))
	if err != nil {
		panic(err)
	}
	defer b.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("orders"))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("one")}).FirstErr(); err != nil {
		panic(err)
	}
	fetches := cl.PollFetches(ctx)
	fetches.EachRecord(func(r *kgo.Record) { fmt.Println(string(r.Value)) })
	// Output: one
}

// Faults: the next two produce requests are answered with
// NOT_LEADER_OR_FOLLOWER; the client retries and the record is written once.
func Example_faults() {
	b, err := skifftest.Start(skifftest.Topic("orders", 1, nil))
	if err != nil {
		panic(err)
	}
	defer b.Close()
	b.InjectFault(skifftest.Fault{
		APIKey: int16(kmsg.Produce), Topic: "orders",
		Action: skifftest.FaultError, ErrorCode: kerr.NotLeaderForPartition.Code, Times: 2,
	})

	// After NOT_LEADER_OR_FOLLOWER, franz-go refreshes metadata before it
	// retries, at most once per MetadataMinAge (5 s by default).
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("one")}).First()
	fmt.Println(r.Offset, err)
	for _, seen := range b.Requests() {
		if seen.API == "Produce" {
			fmt.Println(seen.API, seen.Action)
		}
	}
	// Output:
	// 0 <nil>
	// Produce error
	// Produce error
	// Produce
}

func Example_sarama() {
	b, err := skifftest.Start(skifftest.Topic("orders", 1, nil))
	if err != nil {
		panic(err)
	}
	defer b.Close()

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	producer, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	if err != nil {
		panic(err)
	}
	defer producer.Close()
	if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder("one")}); err != nil {
		panic(err)
	}

	consumer, err := sarama.NewConsumer([]string{b.Addr()}, cfg)
	if err != nil {
		panic(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition("orders", 0, sarama.OffsetOldest)
	if err != nil {
		panic(err)
	}
	defer pc.Close()
	msg := <-pc.Messages()
	fmt.Println(string(msg.Value))
	// Output: one
}

func Example_segmentio() {
	b, err := skifftest.Start(skifftest.Topic("orders", 1, nil))
	if err != nil {
		panic(err)
	}
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "orders", BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("one")}); err != nil {
		panic(err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: "orders", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	msg, err := r.ReadMessage(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(msg.Value))
	// Output: one
}
