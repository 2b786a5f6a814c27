# Developer verbs. `make test` is what CI runs (see .ci/run).
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 60s

.PHONY: build run test unit conformance test-race lint bench fuzz docker clean

build:
	$(GO) build -o bin/skiff ./cmd/skiff

run:
	$(GO) run ./cmd/skiff

# Everything CI runs: lint, our tests with the race detector, then
# franz-go's own integration suite against Skiff. Real clients (kcat,
# confluent-kafka, kafka-python, KafkaJS) must be installed: .ci/run does it.
test: lint unit conformance

# Unit and integration tests, race detector on.
unit:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-race: unit

# franz-go's kgo integration suite at the version pinned in go.mod.
conformance:
	bash integration/conformance/franz-go-suite.sh

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

# Produce throughput and ack latency, group rebalances, and the test kit's
# start, Reset and group balance (BenchmarkTestKit), of Skiff against kfake
# in one run.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./integration/
	$(GO) test -run '^$$' -bench . -benchmem ./storage/ ./protocol/

# Each fuzz target for FUZZTIME (go test -fuzz runs one target at a time).
fuzz:
	@set -e; for pkg in ./protocol ./storage ./coordinator; do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

docker:
	docker build -t skiff .

clean:
	rm -rf bin skiff-data
