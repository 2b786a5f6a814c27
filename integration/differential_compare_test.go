package integration

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// How the differential test compares two brokers' answers: the values are
// walked in parallel with reflection, field by field, and every leaf that
// differs is reported with its path (Topics[0].Partitions[1].ErrorCode).
// Fields in diffNormalised are skipped: they are legitimately different
// between two clusters, or free text.

// diffNormalised names the struct fields that are not compared, wherever
// they occur, and why.
var diffNormalised = map[string]string{
	"ThrottleMillis": "quota throttling is timing",
	"ClusterID":      "each cluster has its own id",
	"TopicID":        "each topic gets a random id",
	"NodeID":         "node ids are configuration",
	"ControllerID":   "node ids are configuration",
	"Leader":         "a node id",
	"LeaderID":       "a node id (Metadata) or a generated member id (JoinGroup)",
	"Replicas":       "node ids",
	"ISR":            "node ids",
	"Host":           "each broker's own address",
	"Port":           "each broker's own address",
	"ErrorMessage":   "free text: error codes are compared, not messages",
	"MemberID":       "member ids are generated",
	"ProducerID":     "producer ids depend on what the cluster allocated before",
	"SessionID":      "fetch session ids are generated",
	"UnknownTags":    "tagged fields neither broker sets",
	"StartTimestamp": "wall-clock time",
}

// diffEntry is one differing leaf.
type diffEntry struct {
	path         string
	kafka, skiff string
}

func (d diffEntry) String() string {
	return fmt.Sprintf("%s: kafka=%s skiff=%s", d.path, d.kafka, d.skiff)
}

// compareResults compares what a scenario returned from each broker.
func compareResults(kafka, skiff []any) []diffEntry {
	var out []diffEntry
	if len(kafka) != len(skiff) {
		out = append(out, diffEntry{path: "len(results)", kafka: fmt.Sprint(len(kafka)), skiff: fmt.Sprint(len(skiff))})
	}
	for i := range min(len(kafka), len(skiff)) {
		walkDiff(fmt.Sprintf("[%d]", i), reflect.ValueOf(kafka[i]), reflect.ValueOf(skiff[i]), &out)
	}
	return out
}

func walkDiff(path string, a, b reflect.Value, out *[]diffEntry) {
	add := func(x, y string) { *out = append(*out, diffEntry{path: path, kafka: x, skiff: y}) }
	if !a.IsValid() || !b.IsValid() {
		if a.IsValid() != b.IsValid() {
			add(showValue(a), showValue(b))
		}
		return
	}
	if a.Type() != b.Type() {
		add(a.Type().String(), b.Type().String())
		return
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				add(showValue(a), showValue(b))
			}
			return
		}
		walkDiff(path, a.Elem(), b.Elem(), out)
	case reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if _, skip := diffNormalised[f.Name]; skip {
				continue
			}
			walkDiff(path+"."+f.Name, a.Field(i), b.Field(i), out)
		}
	case reflect.Slice:
		if a.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				add(showValue(a), showValue(b))
			}
			return
		}
		if _, keys := sortedByIdentity(a); keys != nil {
			// Kafka answers in the order of its own maps: elements with
			// an identity are matched by it and named by it, so that a
			// documented path does not depend on what precedes it.
			walkKeyed(path, a, b, out)
			return
		}
		if a.Len() != b.Len() {
			add(fmt.Sprintf("%d elements %s", a.Len(), showValue(a)), fmt.Sprintf("%d elements %s", b.Len(), showValue(b)))
			return
		}
		for i := range a.Len() {
			walkDiff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i), out)
		}
	case reflect.Array:
		for i := range a.Len() {
			walkDiff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i), out)
		}
	case reflect.Map:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			add(showValue(a), showValue(b))
		}
	default:
		if a.Interface() != b.Interface() {
			add(showValue(a), showValue(b))
		}
	}
}

// walkKeyed compares two arrays of elements with identities by identity:
// an element only one side has is one difference, named by its identity.
func walkKeyed(path string, a, b reflect.Value, out *[]diffEntry) {
	a, keysA := sortedByIdentity(a)
	b, keysB := sortedByIdentity(b)
	i, j := 0, 0
	for i < a.Len() || j < b.Len() {
		switch {
		case j >= b.Len() || i < a.Len() && keysA[i] < keysB[j]:
			*out = append(*out, diffEntry{path: fmt.Sprintf("%s[%s]", path, keysA[i]), kafka: showValue(a.Index(i)), skiff: "<none>"})
			i++
		case i >= a.Len() || keysB[j] < keysA[i]:
			*out = append(*out, diffEntry{path: fmt.Sprintf("%s[%s]", path, keysB[j]), kafka: "<none>", skiff: showValue(b.Index(j))})
			j++
		default:
			walkDiff(fmt.Sprintf("%s[%s]", path, keysA[i]), a.Index(i), b.Index(j), out)
			i, j = i+1, j+1
		}
	}
}

// diffIdentityFields name what identifies an element of a response array.
// Kafka answers in the order of its own maps, which no client relies on,
// so arrays of such elements are compared sorted by these fields.
var diffIdentityFields = []string{"ResourceType", "ResourceName", "Topic", "Name", "Partition", "Feature", "Group", "TransactionalID", "ApiKey"}

// sortedByIdentity returns a sorted copy of a slice of structs that have
// identity fields and the elements' identities, else s itself and nil.
func sortedByIdentity(s reflect.Value) (reflect.Value, []string) {
	elem := s.Type().Elem()
	// Config synonyms are listed in order of precedence: that order counts.
	if elem.Kind() != reflect.Struct || strings.HasSuffix(elem.Name(), "ConfigSynonym") {
		return s, nil
	}
	var idx []int
	for _, name := range diffIdentityFields {
		if f, ok := elem.FieldByName(name); ok && len(f.Index) == 1 {
			idx = append(idx, f.Index[0])
		}
	}
	if len(idx) == 0 {
		return s, nil
	}
	key := func(v reflect.Value) string {
		var parts []string
		for _, i := range idx {
			parts = append(parts, showValue(v.Field(i)))
		}
		return strings.Join(parts, ",")
	}
	out := reflect.MakeSlice(s.Type(), s.Len(), s.Len())
	reflect.Copy(out, s)
	keys := make([]string, s.Len())
	for i := range keys {
		keys[i] = key(out.Index(i))
	}
	perm := make([]int, s.Len())
	for i := range perm {
		perm[i] = i
	}
	sort.SliceStable(perm, func(x, y int) bool { return keys[perm[x]] < keys[perm[y]] })
	sorted := reflect.MakeSlice(s.Type(), s.Len(), s.Len())
	sortedKeys := make([]string, s.Len())
	for i, p := range perm {
		sorted.Index(i).Set(out.Index(p))
		sortedKeys[i] = keys[p]
	}
	return sorted, sortedKeys
}

// showValue prints a value compactly for a failure message.
func showValue(v reflect.Value) string {
	if !v.IsValid() {
		return "<none>"
	}
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return "null"
	}
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
		b := v.Bytes()
		if len(b) > 48 {
			return fmt.Sprintf("%d bytes %x…", len(b), b[:48])
		}
		return fmt.Sprintf("%x", b)
	}
	s := fmt.Sprintf("%+v", v.Interface())
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
