package server

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs (legacy: the request's configs replace every override) and
// IncrementalAlterConfigs (KIP-339: SET, DELETE, APPEND, SUBTRACT per key).
// Topic changes are validated, persisted and applied to the logs at once;
// broker configs are static in Skiff and refused as Kafka refuses configs
// that cannot be updated dynamically.
func init() {
	register(kmsg.AlterConfigs, 0, 2, (*Server).handleAlterConfigs)
	register(kmsg.IncrementalAlterConfigs, 0, 1, (*Server).handleIncrementalAlterConfigs)
}

// alterOp is one requested change, legacy requests using SET only.
type alterOp struct {
	name  string
	op    kmsg.IncrementalAlterConfigOp
	value *string
}

// alterError is a Kafka error for one resource of an alter request.
type alterError struct {
	code *kerr.Error
	msg  string
}

func (e *alterError) Error() string { return e.msg }

func alterErr(code *kerr.Error, format string, args ...any) *alterError {
	return &alterError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) handleAlterConfigs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	dups := duplicateResources(len(req.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, rr := range req.Resources {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		ops := make([]alterOp, len(rr.Configs))
		for j, c := range rr.Configs {
			ops[j] = alterOp{name: c.Name, op: kmsg.IncrementalAlterConfigOpSet, value: c.Value}
		}
		var err error
		if dups[i] {
			err = alterErr(kerr.InvalidRequest, "Duplicate resource %s in request", rr.ResourceName)
		} else {
			err = s.alterResource(rr.ResourceType, rr.ResourceName, ops, true, req.ValidateOnly)
		}
		res.ErrorCode, res.ErrorMessage = alterErrorFields(err)
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

func (s *Server) handleIncrementalAlterConfigs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	dups := duplicateResources(len(req.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, rr := range req.Resources {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		ops := make([]alterOp, len(rr.Configs))
		for j, c := range rr.Configs {
			ops[j] = alterOp{name: c.Name, op: c.Op, value: c.Value}
		}
		var err error
		if dups[i] {
			err = alterErr(kerr.InvalidRequest, "Duplicate resource %s in request", rr.ResourceName)
		} else {
			err = s.alterResource(rr.ResourceType, rr.ResourceName, ops, false, req.ValidateOnly)
		}
		res.ErrorCode, res.ErrorMessage = alterErrorFields(err)
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

func duplicateResources(n int, at func(int) (kmsg.ConfigResourceType, string)) []bool {
	type key struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	count := map[key]int{}
	for i := range n {
		t, name := at(i)
		count[key{t, name}]++
	}
	out := make([]bool, n)
	for i := range n {
		t, name := at(i)
		out[i] = count[key{t, name}] > 1
	}
	return out
}

func alterErrorFields(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	var ae *alterError
	if errors.As(err, &ae) {
		return ae.code.Code, kmsg.StringPtr(ae.msg)
	}
	return kerr.UnknownServerError.Code, kmsg.StringPtr(err.Error())
}

// alterResource validates ops against one resource and, unless
// validateOnly, applies them. replace says the ops are a legacy
// AlterConfigs set that replaces every existing override.
func (s *Server) alterResource(typ kmsg.ConfigResourceType, name string, ops []alterOp, replace, validateOnly bool) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		if name != "" {
			if code, msg := s.checkBrokerResource(name); code != nil {
				return alterErr(code, "%s", msg)
			}
		}
		return s.alterBroker(ops)
	case kmsg.ConfigResourceTypeBrokerLogger:
		if code, msg := s.checkBrokerResource(name); code != nil {
			return alterErr(code, "%s", msg)
		}
		return alterErr(kerr.InvalidRequest, "Skiff does not change log levels at run time; use --log-level")
	case kmsg.ConfigResourceTypeGroupConfig:
		return s.alterGroupConfigs(name, ops, replace, validateOnly)
	default:
		return alterErr(kerr.InvalidRequest, "Unsupported resource type %v", typ)
	}

	current, ok := s.meta.topicOverrides(name)
	if !ok {
		return alterErr(kerr.UnknownTopicOrPartition, "Topic '%s' does not exist.", name)
	}
	next, err := s.applyTopicOps(current, ops, replace)
	if err != nil {
		return err
	}
	if validateOnly || maps.Equal(next, current) {
		return nil
	}
	if err := s.meta.setTopicConfigs(name, next); err != nil {
		if err == errUnknownTopic {
			return alterErr(kerr.UnknownTopicOrPartition, "Topic '%s' does not exist.", name)
		}
		s.log.Error().Err(err).Str("topic", name).Msg("altering topic configs")
		return alterErr(kerr.UnknownServerError, "%v", err)
	}
	return nil
}

// applyTopicOps computes a topic's new overrides, validating every value.
func (s *Server) applyTopicOps(current map[string]string, ops []alterOp, replace bool) (map[string]string, error) {
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.name] {
			return nil, alterErr(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		seen[op.name] = true
	}
	next := maps.Clone(current)
	if replace {
		next = map[string]string{}
	}
	for _, op := range ops {
		d, ok := findTopicConfig(op.name)
		if !ok {
			return nil, alterErr(kerr.InvalidConfig, "Unknown topic config name: %s", op.name)
		}
		if op.op != kmsg.IncrementalAlterConfigOpDelete && op.value == nil {
			return nil, alterErr(kerr.InvalidRequest, "Null value not supported for : %s", op.name)
		}
		switch op.op {
		case kmsg.IncrementalAlterConfigOpSet:
			next[op.name] = strings.TrimSpace(*op.value)
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, op.name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if d.typ != typeList {
				verb := "append"
				if op.op == kmsg.IncrementalAlterConfigOpSubtract {
					verb = "subtract"
				}
				return nil, alterErr(kerr.InvalidConfig, "Config value %s is not allowed for config key: %s", verb, op.name)
			}
			old, ok := next[op.name]
			if !ok {
				old = s.cfg.topicDefaults[op.name]
			}
			items := splitList(old)
			for _, v := range splitList(*op.value) {
				has := slices.Contains(items, v)
				switch {
				case op.op == kmsg.IncrementalAlterConfigOpAppend && !has:
					items = append(items, v)
				case op.op == kmsg.IncrementalAlterConfigOpSubtract && has:
					items = slices.DeleteFunc(items, func(x string) bool { return x == v })
				}
			}
			next[op.name] = strings.Join(items, ",")
		default:
			return nil, alterErr(kerr.InvalidRequest, "Unknown alter config operation %d for %s", op.op, op.name)
		}
		if v, ok := next[op.name]; ok {
			if err := d.validateValue(v); err != nil {
				return nil, alterErr(kerr.InvalidConfig, "%s", err.Error())
			}
		}
	}
	if err := validateTopicConfigSet(next, s.cfg.topicDefaults); err != nil {
		return nil, alterErr(kerr.InvalidConfig, "%s", err.Error())
	}
	return next, nil
}

func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// alterBroker refuses every broker config change: Skiff's broker configs
// are read at start only. Kafka answers a config it cannot update
// dynamically with INVALID_REQUEST (ConfigAdminManager turns the
// validation's ConfigException into InvalidRequestException, KAFKA-13609).
func (s *Server) alterBroker(ops []alterOp) error {
	if len(ops) == 0 {
		return nil
	}
	names := make([]string, 0, len(ops))
	for _, op := range ops {
		if err := validateSetting(op.name, ""); err != nil && strings.Contains(err.Error(), "unknown config") {
			return alterErr(kerr.InvalidConfig, "Unknown broker config: %s", op.name)
		}
		names = append(names, op.name)
	}
	return alterErr(kerr.InvalidRequest, "Cannot update these configs dynamically: Set(%s)", strings.Join(names, ", "))
}
