#!/usr/bin/env bash
# Runs franz-go's own integration suite (go test ./pkg/kgo, the suite its
# authors run against Apache Kafka) against a Skiff broker, at the franz-go
# version pinned in go.mod. Prints the suite's test count and fails if any
# test fails. Extra arguments go to `go test` (e.g. -run TestGroupETL).
#
# The suite's security tests run too: the broker has an SSL listener that
# requires client certificates (from a throwaway CA made with openssl) and a
# SASL_PLAINTEXT listener with SCRAM-SHA-256/512 and unsecured OAUTHBEARER,
# given to the suite as KGO_TEST_SCRAM_SEEDS/KGO_TEST_SCRAM and
# KGO_TEST_OAUTH_SEEDS. The main pass uses PLAINTEXT and SCRAM-SHA-256; a
# second pass runs TestSCRAMAuth with SCRAM-SHA-512; a third runs the tests
# matching $KGO_TLS_RUN (a representative few by default, "." for all) over
# the SSL listener with KGO_TEST_TLS.
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

# A CA, a server certificate for 127.0.0.1 and a client certificate.
pki="$work/pki"
mkdir -p "$pki"
(
	cd "$pki"
	ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=skiff-suite-ca
	for who in server client; do
		openssl req $ec -keyout $who.key -out $who.csr -subj /CN=$who
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >$who.ext
		openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out $who.crt -extfile $who.ext
	done
	cat server.key server.crt >server.pem
) >"$work/pki.log" 2>&1 || { cat "$work/pki.log" >&2; exit 1; }

scram_user=kgo
scram_pass=kgo-suite-secret
"$work/skiff" --listeners PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0 \
	--http-listen 127.0.0.1:0 --data-dir "$work/data" --log-format json \
	--override group.initial.rebalance.delay.ms=0 \
	--override ssl.keystore.type=PEM --override ssl.keystore.location="$pki/server.pem" \
	--override ssl.truststore.type=PEM --override ssl.truststore.location="$pki/ca.pem" \
	--override listener.name.ssl.ssl.client.auth=required \
	--override listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER \
	--override listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerUnsecuredValidatorCallbackHandler \
	--scram-user "$scram_user:$scram_pass" >"$work/broker.log" 2>&1 &
pid=$!
addr=
for _ in $(seq 1 200); do
	addr=$(sed -n 's/.*"listen":"\([^"]*\)".*"message":"skiff started".*/\1/p; s/.*"message":"skiff started".*"listen":"\([^"]*\)".*/\1/p' "$work/broker.log" | head -n 1)
	[ -n "$addr" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/broker.log" >&2; exit 1; }
	sleep 0.05
done
[ -n "$addr" ] || { echo "skiff did not start" >&2; cat "$work/broker.log" >&2; exit 1; }
listener() { sed -n 's/.*"listener":"'"$1"'".*"advertise":"\([^"]*\)".*"message":"listening".*/\1/p' "$work/broker.log" | head -n 1; }
ssl_addr=$(listener SSL)
sasl_addr=$(listener SASL_PLAINTEXT)
[ -n "$ssl_addr" ] && [ -n "$sasl_addr" ] || { echo "skiff did not report its SSL and SASL listeners" >&2; cat "$work/broker.log" >&2; exit 1; }
echo "franz-go $version kgo suite against Skiff at $addr (SSL $ssl_addr, SASL_PLAINTEXT $sasl_addr)"

status=0
suite() { (cd "$work/franz-go/pkg/kgo" && KGO_TEST_RF=1 KGO_TEST_SCRAM_SEEDS="$sasl_addr" KGO_TEST_OAUTH_SEEDS="$sasl_addr" \
	go test -count=1 -v -timeout 20m "$@" .) >>"$work/suite.log" 2>&1 || status=$?; }
# TestShareGroupETL pushes 500k records through two share groups with
# 15 s record locks and takes 60-220 s alone on two busy cores; beside the
# suite's other parallel tests it can run past its own 4-minute deadline,
# so it runs on its own after the main pass.
KGO_SEEDS="$addr" KGO_TEST_SCRAM="$scram_user:$scram_pass:256" suite -skip '^TestShareGroupETL$' "$@"
KGO_SEEDS="$addr" suite -run '^TestShareGroupETL$'
KGO_SEEDS="$addr" KGO_TEST_SCRAM="$scram_user:$scram_pass:512" suite -run '^TestSCRAMAuth$'
KGO_SEEDS="$ssl_addr" KGO_TEST_TLS="ca:$pki/ca.pem,cert:$pki/client.crt,key:$pki/client.key" \
	suite -run "${KGO_TLS_RUN:-^(TestPing|TestGroupETL|TestConsumeRegex|TestIssue325|TestAddRemovePartitions)\$}"

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
