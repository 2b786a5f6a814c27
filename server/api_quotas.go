package server

import (
	"fmt"
	"github.com/skiffmq/skiff/clusterstate"
	"math"
	"net/netip"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client quotas (KIP-546) are stored with the cluster metadata and
// described with Kafka's matching rules; quota.go enforces them.
func init() {
	register(kmsg.DescribeClientQuotas, 0, 1, (*Server).handleDescribeClientQuotas)
	register(kmsg.AlterClientQuotas, 0, 1, (*Server).handleAlterClientQuotas)
}

// Quota entity types.
const (
	quotaUser     = "user"
	quotaClientID = "client-id"
	quotaIP       = "ip"
)

// quotaKeys are the quota configs per kind of entity, with whether the
// value must be a whole number (Kafka's LONG and INT types).
var (
	clientQuotaKeys = map[string]bool{
		"producer_byte_rate": true, "consumer_byte_rate": true,
		"request_percentage": false, "controller_mutation_rate": false,
	}
	ipQuotaKeys = map[string]bool{quotaConnectionRate: true}
)

// clientQuota is one entity's quotas, as clusterstate stores them.
type (
	clientQuota     = clusterstate.Quota
	quotaEntityPart = clusterstate.QuotaEntityPart
)

func (c *cluster) clientQuotas() []clientQuota { return c.Quotas() }

// alterClientQuota applies ops to one entity and persists the result; an
// entity left without values is removed.
func (c *cluster) alterClientQuota(entity []quotaEntityPart, ops []kmsg.AlterClientQuotasRequestEntryOp) error {
	qops := make([]clusterstate.QuotaOp, len(ops))
	for i, op := range ops {
		qops[i] = clusterstate.QuotaOp{Key: op.Key, Value: op.Value, Remove: op.Remove}
	}
	return c.AlterQuota(entity, qops)
}

// validateQuotaEntity checks an entity as Kafka does and returns it in
// canonical order.
func validateQuotaEntity(parts []quotaEntityPart) ([]quotaEntityPart, *kerr.Error, string) {
	if len(parts) == 0 {
		return nil, kerr.InvalidRequest, "Invalid empty client quota entity"
	}
	seen := map[string]bool{}
	for _, p := range parts {
		switch p.Type {
		case quotaUser, quotaClientID, quotaIP:
		default:
			return nil, kerr.InvalidRequest, fmt.Sprintf("Unhandled client quota entity type: %s", p.Type)
		}
		if seen[p.Type] {
			return nil, kerr.InvalidRequest, fmt.Sprintf("Duplicate %s entity type in client quota entity", p.Type)
		}
		seen[p.Type] = true
		if p.Name != nil && *p.Name == "" && p.Type == quotaIP {
			return nil, kerr.InvalidRequest, "Empty ip not supported"
		}
	}
	if seen[quotaIP] && len(parts) > 1 {
		// Kafka's message, its missing space included.
		return nil, kerr.InvalidRequest, "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
	}
	if seen[quotaIP] && parts[0].Name != nil {
		// Kafka also takes a host name and resolves it when the quota is
		// set; Skiff takes addresses only, so that no lookup runs on the
		// accept path.
		if _, err := netip.ParseAddr(*parts[0].Name); err != nil {
			return nil, kerr.InvalidRequest, fmt.Sprintf("%s is not a valid IP or resolvable host.", *parts[0].Name)
		}
	}
	out := append([]quotaEntityPart(nil), parts...)
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil, ""
}

func (s *Server) handleAlterClientQuotas(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, e := range req.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		parts := make([]quotaEntityPart, len(e.Entity))
		for i, p := range e.Entity {
			re.Entity = append(re.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: p.Type, Name: p.Name})
			parts[i] = quotaEntityPart{Type: p.Type, Name: p.Name}
		}
		fail := func(code *kerr.Error, msg string) {
			re.ErrorCode, re.ErrorMessage = code.Code, kmsg.StringPtr(msg)
		}
		entity, code, msg := validateQuotaEntity(parts)
		if code == nil {
			code, msg = validateQuotaOps(entity, e.Ops)
		}
		switch {
		case code != nil:
			fail(code, msg)
		case req.ValidateOnly:
		default:
			if err := s.meta.alterClientQuota(entity, e.Ops); err != nil {
				s.log.Error().Err(err).Msg("altering client quotas")
				fail(kerr.UnknownServerError, err.Error())
			}
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp, nil
}

func validateQuotaOps(entity []quotaEntityPart, ops []kmsg.AlterClientQuotasRequestEntryOp) (*kerr.Error, string) {
	keys := clientQuotaKeys
	if entity[0].Type == quotaIP {
		keys = ipQuotaKeys
	}
	seen := map[string]bool{}
	for _, op := range ops {
		whole, ok := keys[op.Key]
		if !ok {
			return kerr.InvalidRequest, fmt.Sprintf("Invalid configuration key %s", op.Key)
		}
		if seen[op.Key] {
			return kerr.InvalidRequest, fmt.Sprintf("Duplicate quota key %s", op.Key)
		}
		seen[op.Key] = true
		if op.Remove {
			continue
		}
		if math.IsNaN(op.Value) || math.IsInf(op.Value, 0) || op.Value <= 0 {
			return kerr.InvalidRequest, fmt.Sprintf("Quota %s must be greater than 0", op.Key)
		}
		if op.Key == quotaConnectionRate && op.Value > math.MaxInt32 {
			return kerr.InvalidRequest, fmt.Sprintf("Proposed value for %s is too large for an INT.", op.Key)
		}
		if whole && math.Abs(math.Mod(op.Value, 1)) > 1e-6 {
			// Kafka's tolerance and message (ClientQuotaControlManager).
			return kerr.InvalidRequest, fmt.Sprintf("%s cannot be a fractional value.", op.Key)
		}
	}
	return nil, ""
}

func (s *Server) handleDescribeClientQuotas(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	seen := map[string]bool{}
	for _, c := range req.Components {
		bad := ""
		switch {
		case c.EntityType != quotaUser && c.EntityType != quotaClientID && c.EntityType != quotaIP:
			bad = fmt.Sprintf("Custom entity type '%s' not supported", c.EntityType)
		case seen[c.EntityType]:
			bad = fmt.Sprintf("Entity type %s cannot appear more than once in the filter.", c.EntityType)
		case c.MatchType == kmsg.QuotasMatchTypeExact && c.Match == nil:
			bad = fmt.Sprintf("Request specified MATCH_TYPE_EXACT, but set match string to null for entity type %s", c.EntityType)
		case c.MatchType > kmsg.QuotasMatchTypeAny || c.MatchType < 0:
			bad = fmt.Sprintf("Unexpected match type %d", c.MatchType)
		}
		if bad != "" {
			resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(bad)
			return resp, nil
		}
		seen[c.EntityType] = true
	}
	if seen[quotaIP] && (seen[quotaUser] || seen[quotaClientID]) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = kmsg.StringPtr("Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.")
		return resp, nil
	}
	// No match is an empty list: the Java Admin client reads a null list
	// on success as a NullPointerException (kafka-configs --describe for
	// clients or users with no quotas set).
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	for _, q := range s.meta.clientQuotas() {
		if !quotaMatches(q.Entity, req.Components, req.Strict) {
			continue
		}
		e := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range q.Entity {
			e.Entity = append(e.Entity, kmsg.DescribeClientQuotasResponseEntryEntity{Type: p.Type, Name: p.Name})
		}
		keys := make([]string, 0, len(q.Values))
		for k := range q.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e.Values = append(e.Values, kmsg.DescribeClientQuotasResponseEntryValue{Key: k, Value: q.Values[k]})
		}
		resp.Entries = append(resp.Entries, e)
	}
	return resp, nil
}

// quotaMatches applies a DescribeClientQuotas filter: every component must
// match a part of the entity (EXACT: that name; DEFAULT: the default; ANY:
// any name including the default) and, if strict, the entity has no other
// parts.
func quotaMatches(entity []quotaEntityPart, comps []kmsg.DescribeClientQuotasRequestComponent, strict bool) bool {
	if strict && len(entity) != len(comps) {
		return false
	}
	for _, c := range comps {
		var part *quotaEntityPart
		for i := range entity {
			if entity[i].Type == c.EntityType {
				part = &entity[i]
			}
		}
		if part == nil {
			return false
		}
		switch c.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if part.Name == nil || *part.Name != *c.Match {
				return false
			}
		case kmsg.QuotasMatchTypeDefault:
			if part.Name != nil {
				return false
			}
		}
	}
	return true
}
