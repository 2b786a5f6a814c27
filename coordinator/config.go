package coordinator

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Config holds the group coordinator settings. Every field carries the name
// of the Kafka broker property it mirrors; DefaultConfig returns Kafka's
// defaults.
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long a
	// new (empty) classic group waits for more members before its first
	// rebalance completes. Each new member extends it by the same amount,
	// up to the group's rebalance timeout.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms and group.max.session.timeout.ms, the
	// range a classic member's session timeout must fall in.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// MaxGroupSize is group.max.size, the member limit of a classic group.
	MaxGroupSize int
	// NewMemberJoinTimeout bounds how long a brand-new classic member may
	// stay parked in JoinGroup (Kafka's fixed 5 minutes), since a parked
	// member cannot heartbeat.
	NewMemberJoinTimeout time.Duration

	// OffsetsRetention is offsets.retention.minutes: committed offsets of a
	// group that has been empty this long are deleted.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms.
	OffsetsRetentionCheckInterval time.Duration
	// OffsetMetadataMaxBytes is offset.metadata.max.bytes.
	OffsetMetadataMaxBytes int

	// ConsumerHeartbeatInterval is group.consumer.heartbeat.interval.ms, the
	// interval KIP-848 members are told to heartbeat at.
	ConsumerHeartbeatInterval time.Duration
	// ConsumerSessionTimeout is group.consumer.session.timeout.ms.
	ConsumerSessionTimeout time.Duration
	// ConsumerMaxGroupSize is group.consumer.max.size.
	ConsumerMaxGroupSize int
	// ConsumerAssignors is group.consumer.assignors: the server-side
	// assignors KIP-848 members may pick, the first being the default.
	// Supported: "uniform", "range".
	ConsumerAssignors []string

	// StreamsSessionTimeout is group.streams.session.timeout.ms,
	// StreamsHeartbeatInterval group.streams.heartbeat.interval.ms and
	// StreamsNumStandbyReplicas group.streams.num.standby.replicas: the
	// defaults of a streams group's streams.* group configs. Zero values
	// mean Kafka's defaults (45 s, 5 s, 0).
	StreamsSessionTimeout     time.Duration
	StreamsHeartbeatInterval  time.Duration
	StreamsNumStandbyReplicas int
	// StreamsInitialRebalanceDelay is group.streams.initial.rebalance.delay.ms:
	// how long the first member of an empty streams group waits for others
	// before tasks are assigned (0: no wait).
	StreamsInitialRebalanceDelay time.Duration
}

// DefaultConfig returns Kafka 4.x's defaults.
func DefaultConfig() Config {
	return Config{
		InitialRebalanceDelay:         3 * time.Second,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		MaxGroupSize:                  math.MaxInt32,
		NewMemberJoinTimeout:          5 * time.Minute,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		OffsetMetadataMaxBytes:        4096,
		ConsumerHeartbeatInterval:     5 * time.Second,
		ConsumerSessionTimeout:        45 * time.Second,
		ConsumerMaxGroupSize:          math.MaxInt32,
		ConsumerAssignors:             []string{"uniform", "range"},
		StreamsSessionTimeout:         45 * time.Second,
		StreamsHeartbeatInterval:      5 * time.Second,
		StreamsInitialRebalanceDelay:  3 * time.Second,
	}
}

// Validate reports the first setting that Kafka would refuse.
func (c *Config) Validate() error {
	var errs []error
	if c.InitialRebalanceDelay < 0 {
		errs = append(errs, errors.New("group.initial.rebalance.delay.ms must not be negative"))
	}
	if c.MinSessionTimeout <= 0 || c.MaxSessionTimeout < c.MinSessionTimeout {
		errs = append(errs, errors.New("group.min.session.timeout.ms must be positive and not above group.max.session.timeout.ms"))
	}
	if c.MaxGroupSize < 1 {
		errs = append(errs, errors.New("group.max.size must be at least 1"))
	}
	if c.NewMemberJoinTimeout <= 0 {
		errs = append(errs, errors.New("new member join timeout must be positive"))
	}
	if c.OffsetsRetention <= 0 {
		errs = append(errs, errors.New("offsets.retention.minutes must be positive"))
	}
	if c.OffsetsRetentionCheckInterval <= 0 {
		errs = append(errs, errors.New("offsets.retention.check.interval.ms must be positive"))
	}
	if c.OffsetMetadataMaxBytes < 0 {
		errs = append(errs, errors.New("offset.metadata.max.bytes must not be negative"))
	}
	if c.ConsumerHeartbeatInterval <= 0 || c.ConsumerSessionTimeout <= c.ConsumerHeartbeatInterval {
		errs = append(errs, errors.New("group.consumer.heartbeat.interval.ms must be positive and below group.consumer.session.timeout.ms"))
	}
	if c.ConsumerMaxGroupSize < 1 {
		errs = append(errs, errors.New("group.consumer.max.size must be at least 1"))
	}
	if len(c.ConsumerAssignors) == 0 {
		errs = append(errs, errors.New("group.consumer.assignors must not be empty"))
	}
	for _, a := range c.ConsumerAssignors {
		if assignorByName(a) == nil {
			errs = append(errs, fmt.Errorf("group.consumer.assignors: unknown assignor %q (supported: uniform, range)", a))
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("coordinator: invalid config: %s", strings.Join(msgs, "; "))
	}
	return nil
}
