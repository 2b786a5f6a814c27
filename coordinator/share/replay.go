package share

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/skiffmq/skiff/coordinator"
	"github.com/skiffmq/skiff/coordinator/internal/logscan"
	"github.com/skiffmq/skiff/protocol"
)

// ReplayLogs reads every partition of __share_group_state and returns the
// durable state of every share-partition. An undecodable batch or record
// is logged and skipped, as the other coordinators do: one damaged record
// must not keep the broker from starting.
func ReplayLogs(logs []coordinator.Log, log zerolog.Logger) (map[PartitionKey]Persisted, error) {
	rp := NewReplay()
	for part, l := range logs {
		err := logscan.Batches(l, func(b []byte, h protocol.BatchHeader) error {
			if h.IsControl() {
				return nil
			}
			recs, err := protocol.DecodeRecords(b, nil)
			if err != nil {
				log.Error().Err(err).Str("topic", "__share_group_state").Int("partition", part).
					Int64("offset", h.BaseOffset).Msg("share: skipping undecodable batch on replay")
				return nil
			}
			for _, r := range recs {
				if err := rp.Apply(r.Key, r.Value); err != nil {
					log.Error().Err(err).Str("topic", "__share_group_state").Int("partition", part).
						Int64("offset", h.BaseOffset+int64(r.OffsetDelta)).Msg("share: skipping undecodable record on replay")
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("share: replaying __share_group_state-%d: %w", part, err)
		}
	}
	return rp.State, nil
}
