package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The ecosystem tests run one script per client library
// (integration/clients/{confluent,kafkapython,kafkajs}_ecosystem.*) against
// an embedded broker. A script asserts everything it does itself and exits
// non-zero with a message on the first mismatch; on success it prints one
// JSON object, and the Go test then checks the broker's side of each step
// with franz-go: the deleted topic is gone, every codec's records are stored
// under that codec with the exact keys, values and headers, the group's
// commits, producer ids on idempotent batches, and which transactional
// records read_committed shows.
//
// Each script uses the same topics, named after a prefix:
//
//	PREFIX-admin   created with 3 partitions, listed, deleted
//	PREFIX-CODEC   3 partitions × 10 records with keys and headers
//	PREFIX-group   3 × 10 records; group PREFIX-group reads half, commits, resumes
//	PREFIX-idem    3 × 10 records from an idempotent producer
//	PREFIX-txn     committed, aborted, committed transactions of 6 records

const (
	ecoPartitions   = 3
	ecoPerPartition = 10
	ecoTxnRecords   = 6
)

// ecosystemSettings lets a group form without the initial rebalance delay.
func ecosystemSettings() map[string]string {
	return map[string]string{
		"group.initial.rebalance.delay.ms": "0",
		"group.min.session.timeout.ms":     "1000",
	}
}

// ecosystemResult is what every ecosystem script prints.
type ecosystemResult struct {
	Versions     map[string]string `json:"versions"`
	Codecs       map[string]int    `json:"codecs"`
	Idempotent   json.RawMessage   `json:"idempotent"`
	Transactions json.RawMessage   `json:"transactions"`
	// TxnTopic is kafka-python's read of another client's transactions.
	TxnTopic json.RawMessage `json:"transactional_topic"`
}

// runEcosystemScript runs a client library's script against b with prefix
// and returns what it printed. A missing interpreter fails the test: .ci/run
// installs every one.
func runEcosystemScript(t *testing.T, b *broker, prefix string, args ...string) ecosystemResult {
	t.Helper()
	return runEcosystemScriptEnv(t, b, prefix, nil, args...)
}

// runEcosystemScriptEnv is runEcosystemScript with env added to the
// script's environment.
func runEcosystemScriptEnv(t *testing.T, b *broker, prefix string, env []string, args ...string) ecosystemResult {
	t.Helper()
	if _, err := exec.LookPath(args[0]); err != nil {
		t.Fatalf("%s is not installed (.ci/run installs it): %v", args[0], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], b.Addr(), prefix)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s ran for %v:\n%s", filepath.Base(args[len(args)-1]), time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s", strings.Join(args, " "), err, stdout.String())
	}
	var res ecosystemResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("%s printed %q: %v", args[len(args)-1], stdout.String(), err)
	}
	t.Logf("versions: %v", res.Versions)
	return res
}

// ecoRequirePython fails the test unless the system python imports module,
// which Debian's package pkg provides (.ci/run installs it).
func ecoRequirePython(t *testing.T, module, pkg string) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import "+module).CombinedOutput()
	if err != nil {
		t.Fatalf("/usr/bin/python3 cannot import %s (apt-get install %s; .ci/run does it): %v\n%s", module, pkg, err, out)
	}
}

// ecoExpected is record i of partition p in a codec topic; every script
// produces exactly these.
func ecoExpected(codec string, p int32, i int) (key, value []byte, headers []kgo.RecordHeader) {
	key = []byte("key-" + strconv.Itoa(int(p)) + "-" + strconv.Itoa(i))
	value = append([]byte("value-"+codec+"-"+strconv.Itoa(int(p))+"-"+strconv.Itoa(i)+"-"), bytes.Repeat([]byte("x"), 64+i*7)...)
	headers = []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}, {Key: "codec", Value: []byte(codec)}, {Key: "empty", Value: []byte{}}}
	return key, value, headers
}

// ecoCodecIDs are the record-batch compression attribute values.
var ecoCodecIDs = map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

// ecoByPartition groups records by partition, in offset order.
func ecoByPartition(recs []*kgo.Record) map[int32][]*kgo.Record {
	m := map[int32][]*kgo.Record{}
	for _, r := range recs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	for _, rs := range m {
		slices.SortFunc(rs, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
	}
	return m
}

// checkEcoAdmin: PREFIX-admin was deleted.
func checkEcoAdmin(t *testing.T, adm *kadm.Client, prefix string) {
	t.Helper()
	td, err := adm.ListTopics(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if td.Has(prefix + "-admin") {
		t.Errorf("%s-admin still exists after the script deleted it", prefix)
	}
}

// checkEcoCodecs: each codec's topic holds the expected records, in batches
// compressed with that codec.
func checkEcoCodecs(t *testing.T, b *broker, prefix string, codecs []string) {
	t.Helper()
	for _, codec := range codecs {
		topic := prefix + "-" + codec
		parts := ecoByPartition(consumeN(t, b.Addr(), topic, ecoPartitions*ecoPerPartition))
		for p := range int32(ecoPartitions) {
			recs := parts[p]
			if len(recs) != ecoPerPartition {
				t.Errorf("%s/%d: %d records, want %d", topic, p, len(recs), ecoPerPartition)
				continue
			}
			for i, r := range recs {
				key, value, hdrs := ecoExpected(codec, p, i)
				if r.Offset != int64(i) || !bytes.Equal(r.Key, key) || !bytes.Equal(r.Value, value) || !sameHeaders(r.Headers, hdrs) {
					t.Errorf("%s/%d: record %d is %d %q=%q %v, want %q=%q %v", topic, p, i, r.Offset, r.Key, r.Value, r.Headers, key, value, hdrs)
				}
				if got := r.Attrs.CompressionType(); got != ecoCodecIDs[codec] {
					t.Errorf("%s/%d@%d: stored with compression %d, want %d (%s)", topic, p, r.Offset, got, ecoCodecIDs[codec], codec)
				}
			}
		}
	}
}

// checkEcoGroup: after the resume, PREFIX-group has committed every record.
func checkEcoGroup(t *testing.T, adm *kadm.Client, prefix string) {
	t.Helper()
	group := prefix + "-group"
	offs, err := adm.FetchOffsets(testContext(t), group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	for p := range int32(ecoPartitions) {
		if o, ok := offs.Lookup(group, p); !ok || o.Err != nil || o.At != ecoPerPartition {
			t.Errorf("%s committed %s/%d: %+v (found %v), want %d", group, group, p, o, ok, ecoPerPartition)
		}
	}
	groups, err := adm.DescribeGroups(testContext(t), group)
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[group]; g.State != "Empty" || len(g.Members) != 0 {
		t.Errorf("%s after the script: state %q with %d members, want Empty", group, g.State, len(g.Members))
	}
}

// checkEcoIdempotent: every batch in PREFIX-idem carries a producer id.
func checkEcoIdempotent(t *testing.T, b *broker, prefix string) {
	t.Helper()
	topic := prefix + "-idem"
	recs := consumeN(t, b.Addr(), topic, ecoPartitions*ecoPerPartition)
	for _, r := range recs {
		if r.ProducerID < 0 {
			t.Fatalf("%s/%d@%d: producer id %d, the client did not produce idempotently", topic, r.Partition, r.Offset, r.ProducerID)
		}
	}
	parts := ecoByPartition(recs)
	for p := range int32(ecoPartitions) {
		if len(parts[p]) != ecoPerPartition || parts[p][len(parts[p])-1].Offset != ecoPerPartition-1 {
			t.Errorf("%s/%d: %d records, want %d at offsets 0..%d", topic, p, len(parts[p]), ecoPerPartition, ecoPerPartition-1)
		}
	}
}

// checkEcoTransactions: franz-go, too, sees only the committed
// transactions under read_committed and all three under read_uncommitted,
// and group PREFIX-eos holds the offsets the last committed transaction
// sent (7), not the aborted one's (9).
func checkEcoTransactions(t *testing.T, b *broker, adm *kadm.Client, prefix string) {
	t.Helper()
	eos := prefix + "-eos"
	offs, err := adm.FetchOffsets(testContext(t), eos)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", eos, err)
	}
	for p := range int32(ecoPartitions) {
		if o, ok := offs.Lookup(prefix+"-group", p); !ok || o.Err != nil || o.At != 7 {
			t.Errorf("%s committed %s-group/%d: %+v (found %v), want 7 from the last committed transaction", eos, prefix, p, o, ok)
		}
	}
	topic := prefix + "-txn"
	values := func(recs []*kgo.Record) []string {
		var vs []string
		for _, r := range recs {
			if !r.Attrs.IsTransactional() {
				t.Errorf("%s/%d@%d: not in a transactional batch", topic, r.Partition, r.Offset)
			}
			vs = append(vs, string(r.Value))
		}
		slices.Sort(vs)
		return vs
	}
	var committed, all []string
	for _, tag := range []string{"committed1", "aborted", "committed2"} {
		for i := range ecoTxnRecords {
			v := tag + "-" + strconv.Itoa(i)
			all = append(all, v)
			if tag != "aborted" {
				committed = append(committed, v)
			}
		}
	}
	slices.Sort(committed)
	slices.Sort(all)
	if got := values(consumeN(t, b.Addr(), topic, len(committed), kgo.FetchIsolationLevel(kgo.ReadCommitted()))); !slices.Equal(got, committed) {
		t.Errorf("%s read_committed: %v, want %v", topic, got, committed)
	}
	if got := values(consumeN(t, b.Addr(), topic, len(all))); !slices.Equal(got, all) {
		t.Errorf("%s read_uncommitted: %v, want %v", topic, got, all)
	}
}

// TestConfluentKafkaPythonEcosystem drives confluent-kafka (librdkafka) from
// the system python: admin, all four codecs with keys and headers, a group
// resuming from its commits, the idempotent producer, and transactions
// (with offsets sent to them) read by read_committed and read_uncommitted
// consumers.
func TestConfluentKafkaPythonEcosystem(t *testing.T) {
	ecoRequirePython(t, "confluent_kafka", "python3-confluent-kafka")
	testConfluentEcosystem(t, nil)
}

// TestConfluentKafkaPython2Ecosystem is the same scenario with
// confluent-kafka 2.x from PyPI (librdkafka 2.1x) in place of Debian's.
func TestConfluentKafkaPython2Ecosystem(t *testing.T) {
	testConfluentEcosystem(t, confluent2Env(t))
}

func testConfluentEcosystem(t *testing.T, env []string) {
	b := startBroker(t, ecosystemSettings())
	res := runEcosystemScriptEnv(t, b, "ck", env, "/usr/bin/python3", filepath.Join(clientsDir(t), "confluent_ecosystem.py"))
	adm := newAdmin(t, b.Addr())
	codecs := []string{"gzip", "snappy", "lz4", "zstd"}
	for _, c := range codecs {
		if res.Codecs[c] != ecoPartitions*ecoPerPartition {
			t.Errorf("script consumed %d %s records", res.Codecs[c], c)
		}
	}
	checkEcoAdmin(t, adm, "ck")
	checkEcoCodecs(t, b, "ck", codecs)
	checkEcoGroup(t, adm, "ck")
	checkEcoIdempotent(t, b, "ck")
	checkEcoTransactions(t, b, adm, "ck")
}

// TestKafkaPythonEcosystem drives kafka-python from the system python:
// admin, gzip (and any other codec whose python package is installed) with
// keys and headers, a group resuming from its commits, and a partition
// holding franz-go's transactions read to its end past their control
// records. kafka-python 2.0.2 has no idempotent or transactional producer
// and fetches read_uncommitted only; the script reports that, and this test
// logs it.
func TestKafkaPythonEcosystem(t *testing.T) {
	ecoRequirePython(t, "kafka", "python3-kafka")
	b := startBroker(t, ecosystemSettings())
	adm := newAdmin(t, b.Addr())
	// Transactions for the script to read, each ended by a control record.
	createTopic(t, adm, "kp-txn", ecoPartitions, nil)
	txn := txnClient(t, b.Addr(), "kp-txid")
	for _, tag := range []string{"committed1", "aborted", "committed2"} {
		var values []string
		for i := range ecoTxnRecords {
			values = append(values, tag+"-"+strconv.Itoa(i))
		}
		produceTxn(t, txn, "kp-txn", tag != "aborted", values...)
	}
	res := runEcosystemScript(t, b, "kp", "/usr/bin/python3", filepath.Join(clientsDir(t), "kafkapython_ecosystem.py"))
	var codecs []string
	for c, n := range res.Codecs {
		if n != ecoPartitions*ecoPerPartition {
			t.Errorf("script consumed %d %s records", n, c)
		}
		codecs = append(codecs, c)
	}
	if !slices.Contains(codecs, "gzip") {
		t.Errorf("gzip not exercised: %v", codecs)
	}
	t.Logf("codecs %v; idempotent %s; transactions %s; transactional topic read %s", codecs, res.Idempotent, res.Transactions, res.TxnTopic)
	checkEcoAdmin(t, adm, "kp")
	checkEcoCodecs(t, b, "kp", codecs)
	checkEcoGroup(t, adm, "kp")
}
