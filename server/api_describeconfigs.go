package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs v0 was removed in Kafka 4.0 (KIP-896).
func init() { register(kmsg.DescribeConfigs, 1, 4, (*Server).handleDescribeConfigs) }

// configEntry is one described config before it is put on the wire.
type configEntry struct {
	name      string
	value     *string
	source    kmsg.ConfigSource
	readOnly  bool
	sensitive bool
	typ       configType
	doc       string
	synonyms  []configSynonym
}

type configSynonym struct {
	name   string
	value  *string
	source kmsg.ConfigSource
}

func (s *Server) handleDescribeConfigs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	// Each resource is answered with all its configs (and, if asked, their
	// synonyms and documentation): kilobytes for a dozen request bytes.
	// Kafka answers every copy of a repeated resource; Skiff answers each
	// distinct one once, so that a request cannot multiply its answer.
	seen := make(map[string]bool, len(req.Resources))
	for _, rr := range req.Resources {
		if key := describeConfigsKey(rr); seen[key] {
			continue
		} else {
			seen[key] = true
		}
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		entries, code, msg := s.describeResource(rr.ResourceType, rr.ResourceName)
		if code != nil {
			res.ErrorCode = code.Code
			res.ErrorMessage = kmsg.StringPtr(msg)
		}
		want := map[string]bool{}
		for _, k := range rr.ConfigNames {
			want[k] = true
		}
		for _, e := range entries {
			if len(want) > 0 && !want[e.name] {
				continue
			}
			res.Configs = append(res.Configs, e.wire(req))
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

// describeConfigsKey identifies a resource and the configs asked of it.
func describeConfigsKey(rr kmsg.DescribeConfigsRequestResource) string {
	key := strconv.Itoa(int(rr.ResourceType)) + "\x00" + rr.ResourceName
	if rr.ConfigNames != nil {
		key += "\x00" + strings.Join(rr.ConfigNames, "\x00")
	}
	return key
}

func (e *configEntry) wire(req *kmsg.DescribeConfigsRequest) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value = e.name, e.value
	c.ReadOnly, c.IsSensitive = e.readOnly, e.sensitive
	c.Source = e.source
	c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
	c.ConfigType = kmsg.ConfigType(e.typ)
	if e.sensitive {
		c.Value = nil
	}
	if req.IncludeSynonyms {
		for _, syn := range e.synonyms {
			cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			cs.Name, cs.Value, cs.Source = syn.name, syn.value, syn.source
			if e.sensitive {
				cs.Value = nil
			}
			c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
		}
	}
	if req.IncludeDocumentation && e.doc != "" {
		c.Documentation = kmsg.StringPtr(e.doc)
	}
	return c
}

// describeResource lists one resource's configs, or says why it cannot.
func (s *Server) describeResource(typ kmsg.ConfigResourceType, name string) ([]configEntry, *kerr.Error, string) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if err := validateTopicName(name); err != nil {
			return nil, kerr.InvalidTopicException, err.Error()
		}
		overrides, ok := s.meta.topicOverrides(name)
		if !ok {
			return nil, kerr.UnknownTopicOrPartition, fmt.Sprintf("Topic '%s' does not exist.", name)
		}
		return s.topicConfigEntries(overrides), nil, ""
	case kmsg.ConfigResourceTypeBroker:
		if name == "" {
			// The cluster-wide dynamic defaults: Skiff has none.
			return nil, nil, ""
		}
		if code, msg := s.checkBrokerResource(name); code != nil {
			return nil, code, msg
		}
		return s.brokerConfigEntries(), nil, ""
	case kmsg.ConfigResourceTypeBrokerLogger:
		if code, msg := s.checkBrokerResource(name); code != nil {
			return nil, code, msg
		}
		level := strings.ToUpper(s.log.GetLevel().String())
		if s.log.GetLevel() == zerolog.Disabled || s.log.GetLevel() == zerolog.NoLevel {
			level = "OFF"
		}
		return []configEntry{{name: "root", value: kmsg.StringPtr(level), source: kmsg.ConfigSourceDynamicBrokerLoggerConfig, typ: typeString}}, nil, ""
	case kmsg.ConfigResourceTypeGroupConfig:
		return s.groupConfigEntries(name)
	}
	return nil, kerr.InvalidRequest, fmt.Sprintf("Unsupported resource type %v", typ)
}

func (s *Server) checkBrokerResource(name string) (*kerr.Error, string) {
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return kerr.InvalidRequest, fmt.Sprintf("Broker id must be an integer, but it is: %s", name)
	}
	if int32(id) != s.cfg.NodeID {
		return kerr.InvalidRequest, fmt.Sprintf("Unexpected broker id, expected %d or empty string, but received %s", s.cfg.NodeID, name)
	}
	return nil, ""
}

// topicConfigEntries describes every topic config given a topic's
// overrides: the override, else the broker's static setting, else Kafka's
// default, each with its synonyms in Kafka's order of precedence.
func (s *Server) topicConfigEntries(overrides map[string]string) []configEntry {
	out := make([]configEntry, 0, len(topicConfigDefs))
	for i := range topicConfigDefs {
		d := &topicConfigDefs[i]
		if d.internal {
			continue
		}
		e := configEntry{name: d.name, typ: d.typ, doc: topicConfigDocs[d.name]}
		brokerSyns := s.brokerSynonyms(d)
		if v, ok := overrides[d.name]; ok {
			e.value, e.source = kmsg.StringPtr(v), kmsg.ConfigSourceDynamicTopicConfig
			e.synonyms = append(e.synonyms, configSynonym{name: d.name, value: kmsg.StringPtr(v), source: kmsg.ConfigSourceDynamicTopicConfig})
		} else {
			e.value, e.source = kmsg.StringPtr(s.cfg.topicDefaults[d.name]), kmsg.ConfigSourceDefaultConfig
			if s.cfg.staticTopicDefaults[d.name] {
				e.source = kmsg.ConfigSourceStaticBrokerConfig
			}
		}
		e.synonyms = append(e.synonyms, brokerSyns...)
		out = append(out, e)
	}
	return out
}

// brokerSynonyms lists the broker configs that supply a topic config's
// default: those set statically, then the one with Kafka's default.
func (s *Server) brokerSynonyms(d *topicConfigDef) []configSynonym {
	if d.broker == "" {
		return nil
	}
	names := []string{d.broker}
	defName, defValue := d.broker, d.def
	switch d.name {
	case "retention.ms":
		names = []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}
		defName, defValue = "log.retention.hours", "168"
	case "segment.ms":
		names = []string{"log.roll.ms", "log.roll.hours"}
		defName, defValue = "log.roll.hours", "168"
	}
	var out []configSynonym
	for _, n := range names {
		if v, ok := s.cfg.Settings[n]; ok {
			out = append(out, configSynonym{name: n, value: kmsg.StringPtr(strings.TrimSpace(v)), source: kmsg.ConfigSourceStaticBrokerConfig})
		}
	}
	return append(out, configSynonym{name: defName, value: kmsg.StringPtr(defValue), source: kmsg.ConfigSourceDefaultConfig})
}

// brokerConfigEntries describes the broker's configs. None can be changed
// at run time, so all are read-only.
func (s *Server) brokerConfigEntries() []configEntry {
	static := s.effectiveStaticSettings()
	var out []configEntry
	add := func(name string, typ configType, def, doc string) {
		e := configEntry{name: name, typ: typ, readOnly: true, doc: doc, source: kmsg.ConfigSourceDefaultConfig}
		if def != "" {
			e.value = kmsg.StringPtr(def)
		}
		if v, ok := static[name]; ok {
			e.value, e.source = kmsg.StringPtr(v), kmsg.ConfigSourceStaticBrokerConfig
			e.synonyms = append(e.synonyms, configSynonym{name: name, value: e.value, source: e.source})
		}
		if def != "" {
			e.synonyms = append(e.synonyms, configSynonym{name: name, value: kmsg.StringPtr(def), source: kmsg.ConfigSourceDefaultConfig})
		}
		out = append(out, e)
	}
	for _, d := range brokerConfigDefs {
		add(d.name, d.typ, d.def, brokerConfigDocs[d.name])
	}
	for i := range topicConfigDefs {
		d := &topicConfigDefs[i]
		if d.broker == "" || hasBrokerConfig(d.broker) {
			continue
		}
		def := d.def
		switch d.broker {
		case "log.retention.ms", "log.roll.ms":
			def = "" // Kafka's default is null; the hours form supplies it
		}
		add(d.broker, d.typ, def, "The default of the topic config "+d.name+": "+topicConfigDocs[d.name])
	}
	return out
}

func hasBrokerConfig(name string) bool {
	for _, d := range brokerConfigDefs {
		if d.name == name {
			return true
		}
	}
	return false
}

// defaultSecurityProtocolMap is Kafka's listener.security.protocol.map default.
const defaultSecurityProtocolMap = "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"

// effectiveStaticSettings is the broker settings as the user gave them, in
// the file, in flags or in the environment: Settings plus what the Config
// fields say.
func (s *Server) effectiveStaticSettings() map[string]string {
	out := make(map[string]string, len(s.cfg.Settings)+4)
	for k, v := range s.cfg.Settings {
		out[k] = strings.TrimSpace(v)
	}
	if _, ok := out["listeners"]; !ok {
		out["listeners"] = s.cfg.listenersSetting()
	}
	if _, ok := out["advertised.listeners"]; !ok {
		if v := s.cfg.advertisedListenersSetting(); v != "" {
			out["advertised.listeners"] = v
		}
	}
	if _, ok := out["log.dirs"]; !ok {
		out["log.dirs"] = s.cfg.DataDir
	}
	if _, ok := out["node.id"]; !ok {
		out["node.id"] = strconv.Itoa(int(s.cfg.NodeID))
	}
	return out
}
