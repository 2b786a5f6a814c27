package server

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// renamedErrors are Kafka's current names where kerr keeps an older one.
var renamedErrors = map[int16]string{6: "NOT_LEADER_OR_FOLLOWER"}

// errorName is Kafka's name for an error code, as its ErrorsPerSec metric
// labels it and as the fault-injection API accepts it: NONE for 0, and
// UNKNOWN_SERVER_ERROR for a code Kafka does not define.
func errorName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if name, ok := renamedErrors[code]; ok {
		return name
	}
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(code), &ke) {
		return ke.Message
	}
	return "UNKNOWN_SERVER_ERROR"
}
