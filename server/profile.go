package server

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/skiffmq/skiff/coordinator"
)

// Profile names for Config.Profile.
const (
	// ProfileProduction keeps Apache Kafka's defaults. It is the default.
	ProfileProduction = "production"
	// ProfileTest is for integration test suites: groups balance at once,
	// topics are created on first use, and short session timeouts are
	// accepted.
	ProfileTest = "test"
)

// testProfileSettings are the defaults ProfileTest puts under Settings.
// num.partitions stays as given (Kafka's 1 unless set).
var testProfileSettings = map[string]string{
	// Kafka waits 3 s for more members before the first rebalance of a
	// new group; a test's members arrive within milliseconds of each
	// other. 0 would complete a generation per arriving member, each one
	// a rebalance the earlier members only learn of from their next
	// heartbeat (4 franz-go members with 100 ms heartbeats: 206 ms). A
	// 10 ms window, extended by 10 ms per arrival as Kafka extends its
	// delay, gathers them into one generation (about 25 ms).
	"group.initial.rebalance.delay.ms": "10",
	"auto.create.topics.enable":        "true",
	// Kafka refuses session timeouts under 6 s; tests that check member
	// expiry want it in a fraction of a second.
	"group.min.session.timeout.ms": "100",
	// One partition each instead of 50: the first group or transaction
	// of a test opens one log, not fifty. Clients cannot tell.
	"offsets.topic.num.partitions":         "1",
	"transaction.state.log.num.partitions": "1",
}

// applyProfile puts the profile's defaults under c.Settings, leaving any
// setting given explicitly alone. It copies Settings first so that the
// caller's map is not changed, and is idempotent (Validate may run twice).
func (c *Config) applyProfile() error {
	switch c.Profile {
	case "", ProfileProduction:
		return nil
	case ProfileTest:
	default:
		return fmt.Errorf("server: unknown profile %q (production or test)", c.Profile)
	}
	settings := maps.Clone(c.Settings)
	if settings == nil {
		settings = make(map[string]string, len(testProfileSettings))
	}
	for name, v := range testProfileSettings {
		if _, ok := settings[name]; !ok {
			settings[name] = v
		}
	}
	c.Settings = settings
	return nil
}

// ProfileSettings returns the settings a profile sets, as name=value
// sorted by name (for the start log line and documentation).
func ProfileSettings(profile string) []string {
	if profile != ProfileTest {
		return nil
	}
	out := make([]string, 0, len(testProfileSettings))
	for name, v := range testProfileSettings {
		out = append(out, name+"="+v)
	}
	sort.Strings(out)
	return out
}

// profileName is the profile for logs.
func (c *Config) profileName() string {
	if c.Profile == "" {
		return ProfileProduction
	}
	return c.Profile
}

// profileSummary is what the start log line says about the profile.
func (c *Config) profileSummary() string {
	return strings.Join(ProfileSettings(c.Profile), " ")
}

// clock is Config.Clock, or the wall clock.
func (c *Config) clock() coordinator.Clock {
	if c.Clock == nil {
		return coordinator.SystemClock()
	}
	return c.Clock
}
