package server

import (
	"regexp"
	"slices"
	"strings"

	"github.com/skiffmq/skiff/coordinator/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transaction introspection (KIP-664): DescribeProducers v0,
// DescribeTransactions v0 and ListTransactions v0-v2.
func init() {
	register(kmsg.DescribeProducers, 0, 0, (*Server).handleDescribeProducers)
	register(kmsg.DescribeTransactions, 0, 0, (*Server).handleDescribeTransactions)
	register(kmsg.ListTransactions, 0, 2, (*Server).handleListTransactions)
}

func (s *Server) handleDescribeProducers(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	// Each partition is answered with all its active producers; a repeated
	// partition is answered once (Kafka answers every copy), so that four
	// request bytes cannot ask for a partition's whole producer state again.
	for _, t := range collapseDescribeProducers(req.Topics) {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, pi := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = pi
			p := s.meta.partition(t.Topic, pi)
			if p == nil {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			for _, pr := range p.Log.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = pr.ProducerID, int32(pr.ProducerEpoch), pr.LastSequence
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pr.LastTimestamp, pr.CoordinatorEpoch, pr.CurrentTxnStartOffset
				rp.ActiveProducers = append(rp.ActiveProducers, ap)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// collapseDescribeProducers keeps each topic once, with each of its
// partitions once, in the order first named.
func collapseDescribeProducers(topics []kmsg.DescribeProducersRequestTopic) []kmsg.DescribeProducersRequestTopic {
	type topicPartition struct {
		topic     string
		partition int32
	}
	topicAt := make(map[string]int, len(topics))
	seen := make(map[topicPartition]bool)
	var out []kmsg.DescribeProducersRequestTopic
	for _, t := range topics {
		i, ok := topicAt[t.Topic]
		if !ok {
			i = len(out)
			topicAt[t.Topic] = i
			out = append(out, kmsg.DescribeProducersRequestTopic{Topic: t.Topic})
		}
		for _, p := range t.Partitions {
			if k := (topicPartition{t.Topic, p}); !seen[k] {
				seen[k] = true
				out[i].Partitions = append(out[i].Partitions, p)
			}
		}
	}
	return out
}

func (s *Server) handleDescribeTransactions(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	// A transaction is answered with every partition in it; a repeated id
	// is answered once (Kafka answers every copy).
	for _, id := range distinctStrings(req.TransactionalIDs) {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		d, ok := s.txn.Describe(id)
		if !ok {
			// Only the error: Kafka leaves every other field at its
			// schema default (0), not -1.
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State = d.State.String()
		st.TimeoutMillis, st.StartTimestamp = d.TimeoutMs, d.StartTimestamp
		st.ProducerID, st.ProducerEpoch = d.ProducerID, d.ProducerEpoch
		for _, tp := range d.Partitions {
			i := slices.IndexFunc(st.Topics, func(t kmsg.DescribeTransactionsResponseTransactionStateTopic) bool { return t.Topic == tp.Topic })
			if i < 0 {
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic = tp.Topic
				st.Topics = append(st.Topics, t)
				i = len(st.Topics) - 1
			}
			st.Topics[i].Partitions = append(st.Topics[i].Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

func (s *Server) handleListTransactions(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	var states []txn.State
	for _, f := range req.StateFilters {
		st, ok := txn.ParseState(f)
		if !ok {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
			continue
		}
		states = append(states, st)
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		// Java's Pattern.matcher().matches(): the whole id must match.
		re, err := regexp.Compile("^(?:" + *req.TransactionalIDPattern + ")$")
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
		pattern = re
	}
	now := s.txn.NowMs()
	for _, d := range s.txn.List() {
		switch {
		case len(req.StateFilters) > 0 && !slices.Contains(states, d.State):
			continue
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, d.ProducerID):
			continue
		case req.Version >= 1 && req.DurationFilterMillis >= 0 && (d.State != txn.Ongoing || d.StartTimestamp < 0 || now-d.StartTimestamp < req.DurationFilterMillis):
			continue
		case pattern != nil && !pattern.MatchString(d.TransactionalID):
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = d.TransactionalID, d.ProducerID, d.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	slices.SortFunc(resp.TransactionStates, func(a, b kmsg.ListTransactionsResponseTransactionState) int {
		return strings.Compare(a.TransactionalID, b.TransactionalID)
	})
	return resp, nil
}
