# Developer verbs. `make test` is what CI runs (see .ci/run).
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 60s

.PHONY: build build-cluster run test unit conformance test-race lint bench fuzz docker clean

# skiff_build_info{version,commit} (see server.Version, server.Commit).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/skiffmq/skiff/server.Version=$(VERSION) -X github.com/skiffmq/skiff/server.Commit=$(COMMIT)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/skiff ./cmd/skiff

# The binary with cluster support (etcd: --etcd-endpoints, --embedded-etcd).
# Kept out of the default build: linking etcd costs about 17 MB of binary,
# 12 MB of idle RSS and 12 ms of package init even on a single node.
build-cluster:
	$(GO) build -tags etcd -ldflags "$(LDFLAGS)" -o bin/skiff ./cmd/skiff

run:
	$(GO) run ./cmd/skiff

# Everything CI runs: lint, our tests with the race detector, then
# franz-go's own integration suite against Skiff. Real clients (kcat,
# confluent-kafka, kafka-python, KafkaJS) must be installed: .ci/run does it.
test: lint unit conformance

# Unit and integration tests, race detector on.
# Summary lines that tests leave in SKIFF_REPORT_DIR (the differential
# test's count) are printed after the run, since go test hides a passing
# package's output.
unit:
	@rm -rf .reports
	SKIFF_REPORT_DIR=$(CURDIR)/.reports $(GO) test -race -count=1 -timeout 40m $(PKGS)
	@cat .reports/*.txt 2>/dev/null || true

test-race: unit

# franz-go's kgo integration suite at the version pinned in go.mod.
conformance:
	bash integration/conformance/franz-go-suite.sh

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags etcd ./cmd/skiff

# Issue 13's comparison: Apache Kafka 4.1 (default settings), kfake and
# Skiff (durable and page-cache), each a separate process, the same
# franz-go load in alternating rounds, one table of medians and ratios
# (BenchmarkSuite; Kafka needs Java and Maven, as the JVM tests do). Sizes
# come from SKIFF_BENCH_* (see integration/suite_bench_test.go), e.g.
# SKIFF_BENCH_PEAK_MB=5120 for the 5 GB peak-RSS figure. Then the test
# kit's start, Reset and group balance beside kfake's (BenchmarkTestKit)
# and the storage and protocol micro-benchmarks.
bench:
	$(GO) test -run '^$$' -bench '^Benchmark(Suite|TestKit)$$' -benchtime 1x -timeout 30m ./integration/
	$(GO) test -run '^$$' -bench . -benchmem ./storage/ ./protocol/

# Each fuzz target for FUZZTIME (go test -fuzz runs one target at a time).
fuzz:
	@set -e; for pkg in $$(grep -rl --include="*_test.go" "^func Fuzz" . | xargs -n1 dirname | sort -u); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

docker:
	docker build -t skiff .

clean:
	rm -rf bin skiff-data
