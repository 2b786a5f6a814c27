#!/usr/bin/env bash
# Runs franz-go's own integration suite (go test ./pkg/kgo, the suite its
# authors run against Apache Kafka) against a Skiff broker, at the franz-go
# version pinned in go.mod. Prints the suite's test count and fails if any
# test fails. Extra arguments go to `go test` (e.g. -run TestGroupETL).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
version=$(go list -m -f '{{.Version}}' github.com/twmb/franz-go)
src=$(go mod download -json "github.com/twmb/franz-go@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "franz-go $version not found in the module cache" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# The module cache is read-only; the suite needs a writable copy.
cp -r "$src" "$work/franz-go"
chmod -R u+w "$work/franz-go"
go build -o "$work/skiff" ./cmd/skiff

"$work/skiff" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --data-dir "$work/data" --log-format json \
	--override group.initial.rebalance.delay.ms=0 >"$work/broker.log" 2>&1 &
pid=$!
addr=
for _ in $(seq 1 200); do
	addr=$(sed -n 's/.*"listen":"\([^"]*\)".*"message":"skiff started".*/\1/p; s/.*"message":"skiff started".*"listen":"\([^"]*\)".*/\1/p' "$work/broker.log" | head -n 1)
	[ -n "$addr" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/broker.log" >&2; exit 1; }
	sleep 0.05
done
[ -n "$addr" ] || { echo "skiff did not start" >&2; cat "$work/broker.log" >&2; exit 1; }
echo "franz-go $version kgo suite against Skiff at $addr"

status=0
(cd "$work/franz-go/pkg/kgo" && KGO_SEEDS="$addr" KGO_TEST_RF=1 \
	go test -count=1 -v -timeout 20m "$@" .) >"$work/suite.log" 2>&1 || status=$?

# The per-test result lines, then the count.
grep -E '^[[:space:]]*--- (PASS|FAIL|SKIP)' "$work/suite.log" || true
passed=$(grep -cE '^[[:space:]]*--- PASS' "$work/suite.log" || true)
failed=$(grep -cE '^[[:space:]]*--- FAIL' "$work/suite.log" || true)
skipped=$(grep -cE '^[[:space:]]*--- SKIP' "$work/suite.log" || true)
if [ "$status" -ne 0 ]; then
	echo "franz-go suite failed (exit $status): failure messages, the log's tail, the broker's warnings" >&2
	grep -E '^[[:space:]]+[A-Za-z0-9_]+_test\.go:[0-9]+: ' "$work/suite.log" | head -n 200 >&2 || true
	tail -n 100 "$work/suite.log" >&2
	grep -E '"level":"(warn|error)"' "$work/broker.log" | tail -n 50 >&2 || true
fi
echo "franz-go kgo suite $version against Skiff, tests and subtests:"
echo "conformance: $passed passed, $failed failed, $skipped skipped"
exit "$status"
