package server

import (
	"fmt"
	"strconv"
	"strings"
)

// settingSegmentFiles is Skiff's own bound on open sealed-segment files
// (see storage/segfiles.go). Kafka has no such setting: it keeps every
// segment open and asks for a raised ulimit. 0 (the default) derives the
// budget from the descriptor limit (storage.DefaultSegmentFiles).
const settingSegmentFiles = "skiff.log.segment.files.max"

func validateStorageSetting(name, v string) (known bool, err error) {
	if name != settingSegmentFiles {
		return false, nil
	}
	if n, perr := strconv.Atoi(strings.TrimSpace(v)); perr != nil || n < 0 {
		return true, fmt.Errorf("server: invalid value %q for %s: want a whole number of files, 0 for a quarter of the descriptor limit", v, name)
	}
	return true, nil
}

// segmentFiles is the validated skiff.log.segment.files.max, 0 if unset.
func (c *Config) segmentFiles() int {
	n, _ := strconv.Atoi(strings.TrimSpace(c.Settings[settingSegmentFiles])) // validated
	return n
}
