package integration

import "strings"

// Every intended difference between Skiff and Apache Kafka 4.1 that the
// differential test sees, keyed "<scenario> <path>" (a path ending in *
// covers everything under it), with the reason. A difference not listed
// here fails TestDifferential; an entry that no longer occurs fails it too,
// so this list stays true.
var diffKnown = map[string]string{}

// knownDifference returns the entry that documents the difference at path
// in scenario, and its reason; "" if none does.
func knownDifference(scenario, path string) (key, reason string) {
	for k, r := range diffKnown {
		name, pattern, _ := strings.Cut(k, " ")
		if name != scenario {
			continue
		}
		if pattern == path || strings.HasSuffix(pattern, "*") && strings.HasPrefix(path, strings.TrimSuffix(pattern, "*")) {
			return k, r
		}
	}
	return "", ""
}
