package coordinator

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// Clock is the coordinator's only source of time. Tests inject a fake one so
// that session and rebalance timeouts fire exactly when a test advances it.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed. stop
	// cancels the call and reports whether it did so before f started.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the wall clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// TopicLookup is the cluster metadata the coordinator needs: which topics
// and partitions exist (offset commits for unknown partitions are refused)
// and topic IDs (KIP-848 assignments name topics by ID).
type TopicLookup interface {
	PartitionCount(topic string) (int32, bool)
	TopicID(topic string) ([16]byte, bool)
	TopicNameByID(id [16]byte) (string, bool)
	TopicNames() []string
}

// Log is one partition of the internal compacted topic __consumer_offsets,
// the part of the storage engine's partition log the coordinator uses.
type Log interface {
	// AppendRecords appends one or more magic-2 record batches and, when
	// sync is true, returns only once they are durable.
	AppendRecords(records []byte, sync bool) (baseOffset int64, err error)
	// ReadRecords returns whole batches starting at offset, at most
	// maxBytes of them (but at least one batch if one exists), and the
	// partition's high watermark.
	ReadRecords(offset int64, maxBytes int) (records []byte, highWatermark int64, err error)
}

// Deps are the coordinator's collaborators.
type Deps struct {
	Clock  Clock // nil means SystemClock
	Logger zerolog.Logger
	Topics TopicLookup
	// Logs are the partitions of __consumer_offsets, in partition order. It
	// is empty when the topic does not exist yet; CreateLogs then creates it
	// on the first write and returns its partitions.
	Logs       []Log
	CreateLogs func() ([]Log, error)
	// CreateStreamsTopics creates the internal topics a streams group
	// needs (KIP-1071). It is called with no coordinator lock held; nil
	// means the topics must be created by someone else.
	CreateStreamsTopics func([]StreamsInternalTopic)
	// StreamsGroupConfigs are the group configs kept in the cluster
	// metadata; the coordinator takes the streams.* ones.
	StreamsGroupConfigs map[string]map[string]string
}

// ClientInfo identifies the connection a request came from. Kafka derives
// member ids from the client id and reports both in DescribeGroups.
type ClientInfo struct {
	ClientID string
	// Host is the client address as Kafka prints it: "/" + IP.
	Host string
}

type clientInfoKey struct{}

// WithClientInfo returns a context carrying the requesting client's identity;
// the server wraps each group request's context with it.
func WithClientInfo(ctx context.Context, ci ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, ci)
}

func clientInfoFrom(ctx context.Context) ClientInfo {
	ci, _ := ctx.Value(clientInfoKey{}).(ClientInfo)
	return ci
}
