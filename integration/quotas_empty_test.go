package integration

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeClientQuotasNoMatchIsEmptyNotNull: kafka-configs
// --entity-type clients failed with a NullPointerException in the Java
// Admin client because DescribeClientQuotas answered a filter that
// matched nothing with a null entries array. Kafka sends an empty array
// (DescribeClientQuotasResponse.fromQuotaEntities), null only with an
// error.
func TestDescribeClientQuotasNoMatchIsEmptyNotNull(t *testing.T) {
	b := startBroker(t, nil)
	c := dialRaw(t, b.Addr())
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrDescribeClientQuotasRequest()
		req.Version = v
		comp := kmsg.NewDescribeClientQuotasRequestComponent()
		comp.EntityType, comp.MatchType, comp.Match = "client-id", kmsg.QuotasMatchTypeExact, kmsg.StringPtr("nobody")
		req.Components = append(req.Components, comp)
		resp := roundTrip(t, c, req, int32(v)).(*kmsg.DescribeClientQuotasResponse)
		if resp.ErrorCode != 0 || resp.Entries == nil || len(resp.Entries) != 0 {
			t.Errorf("v%d: error %d, entries %#v; want no error and an empty, non-null list", v, resp.ErrorCode, resp.Entries)
		}
	}
}
