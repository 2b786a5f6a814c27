package server

import (
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// reqTimes are the moments a request passes through its connection's
// pipeline (conn.go), for the request histograms. All zero without
// metrics, so that a broker with metrics off does not read the clock.
type reqTimes struct {
	read       time.Time     // decoded by the reader
	start, end time.Time     // the handler ran
	wait       time.Duration // a deferred response waited (fsync)
}

// now is time.Now, or the zero time without metrics.
func (m *metrics) now() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

// request records one request whose response (nil for acks=0) is ready.
// It takes no lock and does not allocate for Produce and Fetch.
func (m *metrics) request(key int16, t *reqTimes, resp kmsg.Response) {
	if m == nil || t.read.IsZero() || key < 0 || int(key) >= len(m.apis) {
		return
	}
	am := m.apis[key]
	if am == nil {
		return
	}
	now := time.Now()
	s := am.get()
	s.requests.Inc()
	s.total.Observe(now.Sub(t.read).Seconds())
	s.queue.Observe(t.start.Sub(t.read).Seconds())
	s.local.Observe(t.end.Sub(t.start).Seconds())
	s.wait.Observe(t.wait.Seconds())
	if resp != nil {
		am.countErrors(resp)
	}
}

func (am *apiMetrics) countError(code int16) {
	i := int(code) + 1
	if i < 0 || i >= len(am.errors) {
		i = 0 // UNKNOWN_SERVER_ERROR
	}
	am.errors[i].Add(1)
}

// countErrors counts every error code in a response, as Kafka's
// AbstractResponse.errorCounts does: one per partition (or other entity)
// that carries a code, NONE included. Produce and Fetch, the hot APIs,
// are walked directly; the rest by reflection over their ErrorCode fields.
func (am *apiMetrics) countErrors(resp kmsg.Response) {
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				am.countError(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		am.countError(r.ErrorCode)
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				am.countError(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	default:
		am.walkErrors(reflect.ValueOf(resp))
	}
}

var int16Type = reflect.TypeOf(int16(0))

func (am *apiMetrics) walkErrors(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			am.walkErrors(v.Elem())
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := 0; i < v.Len(); i++ {
				am.walkErrors(v.Index(i))
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Name == "ErrorCode" && f.Type == int16Type {
				am.countError(int16(v.Field(i).Int()))
				continue
			}
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Struct, reflect.Pointer:
				am.walkErrors(v.Field(i))
			}
		}
	}
}
