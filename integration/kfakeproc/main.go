// Command kfakeproc runs franz-go's kfake as a process of its own, so that
// `make bench` can read its CPU time and memory from /proc as it does
// Apache Kafka's and Skiff's. It listens on -listen, seeds -topics with
// -partitions each, prints "ready" and serves until stdin closes or it is
// signalled.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on")
	partitions := flag.Int("partitions", 6, "partitions of each seeded topic")
	topics := flag.String("topics", "", "comma-separated topics to create at start")
	flag.Parse()

	_, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakeproc: -listen %q: %v\n", *listen, err)
		os.Exit(2)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakeproc: -listen port %q: %v\n", portStr, err)
		os.Exit(2)
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port)}
	if *topics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakeproc: %v\n", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println("ready", c.ListenAddrs()[0])

	// The parent closing our stdin (or dying) ends the process, so a
	// benchmark killed mid-run leaves no kfake behind.
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sig:
	}
}
