package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sizePrefixed returns body behind a big-endian int32 size.
func sizePrefixed(size uint32, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, size), body...)
}

func TestReadFrame(t *testing.T) {
	eight := []byte{0, 18, 0, 3, 0, 0, 0, 7}
	for _, tc := range []struct {
		name    string
		in      []byte
		max     int32
		want    []byte
		wantErr error
	}{
		{"smallest frame", sizePrefixed(8, eight), 64, eight, nil},
		{"frame of exactly max", sizePrefixed(64, bytes.Repeat([]byte{1}, 64)), 64, bytes.Repeat([]byte{1}, 64), nil},
		{"trailing bytes stay unread", sizePrefixed(8, append(eight, 9, 9, 9)), 64, eight, nil},
		{"one past max", sizePrefixed(65, bytes.Repeat([]byte{1}, 65)), 64, nil, protocol.ErrFrameSize},
		{"max int32", sizePrefixed(0x7fffffff, eight), protocol.DefaultMaxRequestSize, nil, protocol.ErrFrameSize},
		{"too small for a header", sizePrefixed(7, eight[:7]), 64, nil, protocol.ErrFrameSize},
		{"zero", sizePrefixed(0, nil), 64, nil, protocol.ErrFrameSize},
		{"negative one", sizePrefixed(0xffffffff, eight), 64, nil, protocol.ErrFrameSize},
		{"min int32", sizePrefixed(0x80000000, eight), 64, nil, protocol.ErrFrameSize},
		{"no bytes at all", nil, 64, nil, io.EOF},
		{"size cut short", []byte{0, 0}, 64, nil, io.ErrUnexpectedEOF},
		{"body cut short", sizePrefixed(20, eight[:5]), 64, nil, io.ErrUnexpectedEOF},
		{"body missing", sizePrefixed(20, nil), 64, nil, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, wrap := range []struct {
				name string
				r    func(io.Reader) io.Reader
			}{
				{"whole", func(r io.Reader) io.Reader { return r }},
				{"one byte at a time", iotest.OneByteReader},
				{"eof with data", iotest.DataErrReader},
			} {
				got, err := protocol.ReadFrame(wrap.r(bytes.NewReader(tc.in)), tc.max, nil)
				if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
					t.Fatalf("%s: error %v, want %v", wrap.name, err, tc.wantErr)
				}
				if !bytes.Equal(got, tc.want) {
					t.Fatalf("%s: frame %v, want %v", wrap.name, got, tc.want)
				}
			}
		})
	}
}

func TestReadFrameReader(t *testing.T) {
	t.Run("read error passes through", func(t *testing.T) {
		boom := errors.New("boom")
		r := io.MultiReader(bytes.NewReader([]byte{0, 0, 0, 20, 1, 2}), iotest.ErrReader(boom))
		if _, err := protocol.ReadFrame(r, 64, nil); !errors.Is(err, boom) {
			t.Fatalf("error %v, want the reader's", err)
		}
	})
	t.Run("consecutive frames", func(t *testing.T) {
		var in []byte
		for i := range 5 {
			in = append(in, sizePrefixed(uint32(8+i), bytes.Repeat([]byte{byte(i)}, 8+i))...)
		}
		r := bytes.NewReader(in)
		var buf []byte
		for i := range 5 {
			f, err := protocol.ReadFrame(r, 64, buf)
			if err != nil || len(f) != 8+i || f[0] != byte(i) || f[len(f)-1] != byte(i) {
				t.Fatalf("frame %d: %v %v", i, f, err)
			}
			buf = f
		}
		if _, err := protocol.ReadFrame(r, 64, buf); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	})
}

func TestReadFrameBuffer(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 16)
	in := sizePrefixed(16, body)

	big := make([]byte, 3, 32)
	got, err := protocol.ReadFrame(bytes.NewReader(in), 64, big)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("with a large buffer: %v %v", got, err)
	}
	if &got[0] != &big[:1][0] {
		t.Error("a buffer with enough capacity was not reused")
	}

	small := make([]byte, 0, 15)
	got, err = protocol.ReadFrame(bytes.NewReader(in), 64, small)
	if err != nil || !bytes.Equal(got, body) || cap(got) < 16 {
		t.Fatalf("with a small buffer: %v %v", got, err)
	}
	if &got[0] == &small[:1][0] {
		t.Error("a buffer too small was written past its capacity")
	}
}

// TestReadFrameHugePrefixDoesNotAllocate: a hostile size prefix is refused
// before anything of that size is allocated.
func TestReadFrameHugePrefixDoesNotAllocate(t *testing.T) {
	in := sizePrefixed(0x7fffffff, []byte{1, 2, 3, 4})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := protocol.ReadFrame(bytes.NewReader(in), protocol.DefaultMaxRequestSize, nil); !errors.Is(err, protocol.ErrFrameSize) {
			t.Fatalf("error %v, want ErrFrameSize", err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("refusing ten 2 GiB prefixes allocated %d bytes", d)
	}
}

// header builds the fixed part of a request header; clientID < 0 length
// means a null client id.
func header(key, version int16, correlationID int32, clientIDLen int16, clientID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(clientIDLen))
	return append(b, clientID...)
}

func TestParseRequestHeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frame    []byte
		want     protocol.RequestHeader
		wantRest []byte
		wantErr  bool
	}{
		{"client id", append(header(3, 12, 99, 5, "kcat1"), 1, 2, 3),
			protocol.RequestHeader{APIKey: 3, APIVersion: 12, CorrelationID: 99, ClientID: "kcat1"}, []byte{1, 2, 3}, false},
		{"null client id", append(header(18, 3, 1, -1, ""), 0),
			protocol.RequestHeader{APIKey: 18, APIVersion: 3, CorrelationID: 1}, []byte{0}, false},
		{"empty client id, nothing after", header(18, 0, 2, 0, ""),
			protocol.RequestHeader{APIKey: 18, CorrelationID: 2}, []byte{}, false},
		{"negative fields are kept", header(-1, -5, -7, 1, "x"),
			protocol.RequestHeader{APIKey: -1, APIVersion: -5, CorrelationID: -7, ClientID: "x"}, []byte{}, false},
		{"client id fills the frame", header(0, 9, 3, 3, "abc"),
			protocol.RequestHeader{APIKey: 0, APIVersion: 9, CorrelationID: 3, ClientID: "abc"}, []byte{}, false},
		{"client id longer than the frame", header(0, 9, 3, 4, "abc"), protocol.RequestHeader{}, nil, true},
		{"client id length -2", header(0, 9, 3, -2, "ab"), protocol.RequestHeader{}, nil, true},
		{"client id length min int16", header(0, 9, 3, -0x8000, "ab"), protocol.RequestHeader{}, nil, true},
		{"no client id length", header(0, 9, 3, 0, "")[:8], protocol.RequestHeader{}, nil, true},
		{"half a client id length", header(0, 9, 3, 0, "")[:9], protocol.RequestHeader{}, nil, true},
		{"empty", nil, protocol.RequestHeader{}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rest, err := protocol.ParseRequestHeader(tc.frame)
			if tc.wantErr {
				if !errors.Is(err, protocol.ErrHeaderMalformed) {
					t.Fatalf("error %v, want ErrHeaderMalformed", err)
				}
				return
			}
			if err != nil || h != tc.want || !bytes.Equal(rest, tc.wantRest) {
				t.Fatalf("got %+v rest %v err %v; want %+v rest %v", h, rest, err, tc.want, tc.wantRest)
			}
		})
	}
}

// requestFrame encodes req as a client does, without the size prefix:
// header v1, or v2 (with headerTags as its tag section, default empty) for
// flexible versions.
func requestFrame(req kmsg.Request, correlationID int32, clientID *string, headerTags []byte) []byte {
	var b []byte
	if clientID == nil {
		b = header(req.Key(), req.GetVersion(), correlationID, -1, "")
	} else {
		b = header(req.Key(), req.GetVersion(), correlationID, int16(len(*clientID)), *clientID)
	}
	if req.IsFlexible() {
		if headerTags == nil {
			headerTags = []byte{0}
		}
		b = append(b, headerTags...)
	}
	return req.AppendTo(b)
}

// sampleBatch is a small valid-looking magic-2 batch; the codec layer does
// not look inside it.
func sampleBatch() []byte {
	r := kmsg.Record{Value: []byte("v"), Key: []byte("k")}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	b := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1}
	b.Records = r.AppendTo(nil)
	b.Length = int32(49 + len(b.Records))
	return b.AppendTo(nil)
}

// sampleRequests returns requests with their fields filled, at the given
// version, for the APIs the broker serves and a few more.
func sampleRequests() []kmsg.Request {
	var out []kmsg.Request
	add := func(req kmsg.Request, versions ...int16) {
		for _, v := range versions {
			if v > req.MaxVersion() {
				continue
			}
			// A copy per version, holding only what that version carries.
			req.SetVersion(v)
			c := kmsg.RequestForKey(req.Key())
			c.SetVersion(v)
			if err := c.ReadFrom(req.AppendTo(nil)); err != nil {
				panic(err)
			}
			out = append(out, c)
		}
	}

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "skiff-test", "1.0.0"
	add(av, 0, 1, 2, 3, 4)

	md := kmsg.NewPtrMetadataRequest()
	for _, name := range []string{"orders", "payments"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		mt.TopicID = [16]byte{1, 2, 3}
		md.Topics = append(md.Topics, mt)
	}
	md.AllowAutoTopicCreation = true
	add(md, 0, 1, 4, 8, 9, 10, 12, 13)

	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, 30000
	pr.TransactionID = kmsg.StringPtr("txn")
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = "orders", [16]byte{9}
	for p := range int32(2) {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = p, sampleBatch()
		pt.Partitions = append(pt.Partitions, pp)
	}
	pr.Topics = append(pr.Topics, pt)
	add(pr, 3, 7, 8, 9, 11, 12, 13)

	fr := kmsg.NewPtrFetchRequest()
	fr.ReplicaID, fr.MaxWaitMillis, fr.MinBytes, fr.MaxBytes = -1, 500, 1, 50<<20
	fr.SessionID, fr.SessionEpoch = 0, -1
	fr.Rack = "rack-a"
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "orders", [16]byte{9}
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1, 42, 1<<20, 3
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	ff := kmsg.NewFetchRequestForgottenTopic()
	ff.Topic, ff.Partitions = "old", []int32{0, 1}
	fr.ForgottenTopics = append(fr.ForgottenTopics, ff)
	add(fr, 4, 7, 11, 12, 13, 15, 16, 17, 18)

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID, lo.IsolationLevel = -1, 1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "orders"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp = 2, -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	add(lo, 1, 2, 5, 6, 7, 8, 9, 10)

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.TimeoutMillis = 5000
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "new", 3, 1
	cc := kmsg.NewCreateTopicsRequestTopicConfig()
	cc.Name, cc.Value = "retention.ms", kmsg.StringPtr("1000")
	ctt.Configs = append(ctt.Configs, cc)
	ct.Topics = append(ct.Topics, ctt)
	add(ct, 2, 4, 5, 7)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TimeoutMillis = 5000
	dt.TopicNames = []string{"gone"}
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr("gone")
	dt.Topics = append(dt.Topics, dtt)
	add(dt, 1, 3, 4, 6)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "group-a", []string{"group-a", "group-b"}
	add(fc, 0, 2, 3, 4, 6)

	return out
}

func TestDecodeRequest(t *testing.T) {
	clientID := "skiff-test"
	for _, req := range sampleRequests() {
		name := kmsg.NameForKey(req.Key())
		for _, tc := range []struct {
			label      string
			clientID   *string
			headerTags []byte
		}{
			{"client id", &clientID, nil},
			{"null client id", nil, nil},
			// Header tagged fields a broker does not know must be skipped.
			{"unknown header tags", &clientID, []byte{2, 0, 3, 'a', 'b', 'c', 7, 0}},
		} {
			if tc.headerTags != nil && !req.IsFlexible() {
				continue
			}
			frame := requestFrame(req, 1234, tc.clientID, tc.headerTags)
			h, rest, err := protocol.ParseRequestHeader(frame)
			if err != nil {
				t.Fatalf("%s v%d %s: header: %v", name, req.GetVersion(), tc.label, err)
			}
			wantClientID := ""
			if tc.clientID != nil {
				wantClientID = *tc.clientID
			}
			if h.APIKey != req.Key() || h.APIVersion != req.GetVersion() || h.CorrelationID != 1234 || h.ClientID != wantClientID {
				t.Fatalf("%s v%d %s: header %+v", name, req.GetVersion(), tc.label, h)
			}
			got, err := protocol.DecodeRequest(h, rest)
			if err != nil {
				t.Fatalf("%s v%d %s: decode: %v", name, req.GetVersion(), tc.label, err)
			}
			if got.Key() != req.Key() || got.GetVersion() != req.GetVersion() {
				t.Fatalf("%s v%d %s: decoded %s v%d", name, req.GetVersion(), tc.label, kmsg.NameForKey(got.Key()), got.GetVersion())
			}
			if want, have := req.AppendTo(nil), got.AppendTo(nil); !bytes.Equal(want, have) {
				t.Fatalf("%s v%d %s: decoded request re-encodes as\n%x\nwant\n%x", name, req.GetVersion(), tc.label, have, want)
			}

			// Every truncation of the body fails to decode; none panics.
			body := req.AppendTo(nil)
			for cut := 1; cut <= len(body); cut++ {
				h, rest, err := protocol.ParseRequestHeader(frame[:len(frame)-cut])
				if err != nil {
					continue
				}
				if _, err := protocol.DecodeRequest(h, rest); err == nil {
					t.Fatalf("%s v%d %s: body cut by %d bytes decoded without error", name, req.GetVersion(), tc.label, cut)
				}
			}
		}
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	body := md.AppendTo(nil)
	for _, tc := range []struct {
		name string
		h    protocol.RequestHeader
		rest []byte
	}{
		{"unknown key", protocol.RequestHeader{APIKey: 9999}, nil},
		{"negative key", protocol.RequestHeader{APIKey: -1}, nil},
		{"header tag count without tags", protocol.RequestHeader{APIKey: 3, APIVersion: 12}, append([]byte{1}, body...)[:1]},
		{"header tag longer than the frame", protocol.RequestHeader{APIKey: 3, APIVersion: 12}, append([]byte{1, 0, 100}, body...)},
		{"header tag size overflows", protocol.RequestHeader{APIKey: 3, APIVersion: 12}, []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"header tag count varint too long", protocol.RequestHeader{APIKey: 3, APIVersion: 12}, bytes.Repeat([]byte{0xff}, 11)},
		{"no header tag section", protocol.RequestHeader{APIKey: 3, APIVersion: 12}, nil},
		{"array count beyond the body", protocol.RequestHeader{APIKey: 3, APIVersion: 1}, []byte{0x7f, 0xff, 0xff, 0xff, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if req, err := protocol.DecodeRequest(tc.h, tc.rest); err == nil {
				t.Fatalf("decoded %+v without error", req)
			}
		})
	}
}

func TestAppendResponse(t *testing.T) {
	apiVersions := func(v int16) kmsg.Response {
		r := kmsg.NewPtrApiVersionsResponse()
		r.Version = v
		r.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 0, MinVersion: 0, MaxVersion: 13}, {ApiKey: 18, MinVersion: 0, MaxVersion: 4}}
		return r
	}
	metadata := func(v int16) kmsg.Response {
		r := kmsg.NewPtrMetadataResponse()
		r.Version = v
		b := kmsg.NewMetadataResponseBroker()
		b.Host, b.Port = "127.0.0.1", 9092
		r.Brokers = append(r.Brokers, b)
		return r
	}
	produce := func(v int16) kmsg.Response {
		r := kmsg.NewPtrProduceResponse()
		r.Version = v
		return r
	}
	for _, tc := range []struct {
		name      string
		resp      kmsg.Response
		headerTag bool // response header v1
	}{
		{"ApiVersions v0", apiVersions(0), false},
		{"ApiVersions v3 is flexible but keeps header v0", apiVersions(3), false},
		{"ApiVersions v4", apiVersions(4), false},
		{"Metadata v8", metadata(8), false},
		{"Metadata v9 flexible", metadata(9), true},
		{"Metadata v12 flexible", metadata(12), true},
		{"Produce v8", produce(8), false},
		{"Produce v9 flexible", produce(9), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("earlier response bytes")
			out := protocol.AppendResponse(bytes.Clone(prefix), -559038737, tc.resp)
			if !bytes.Equal(out[:len(prefix)], prefix) {
				t.Fatal("AppendResponse changed bytes already in dst")
			}
			frame := out[len(prefix):]
			if size := binary.BigEndian.Uint32(frame); int(size) != len(frame)-4 {
				t.Fatalf("size prefix %d, frame holds %d bytes after it", size, len(frame)-4)
			}
			if corr := int32(binary.BigEndian.Uint32(frame[4:])); corr != -559038737 {
				t.Fatalf("correlation id %d", corr)
			}
			body := frame[8:]
			if tc.headerTag {
				if body[0] != 0 {
					t.Fatalf("response header v1 tag section %x, want an empty one", body[0])
				}
				body = body[1:]
			}
			if want := tc.resp.AppendTo(nil); !bytes.Equal(body, want) {
				t.Fatalf("body\n%x\nwant\n%x", body, want)
			}
			// A client decodes it back.
			back := tc.resp.RequestKind().ResponseKind()
			back.SetVersion(tc.resp.GetVersion())
			if err := back.ReadFrom(body); err != nil {
				t.Fatalf("client-side decode: %v", err)
			}
		})
	}
}

// fuzzFrames are seed frames (without size prefix) for the fuzz targets:
// every sample request with its header, plus some broken ones.
func fuzzFrames() [][]byte {
	clientID := "fuzz"
	var out [][]byte
	for _, req := range sampleRequests() {
		f := requestFrame(req, 7, &clientID, nil)
		out = append(out, f, f[:len(f)/2], requestFrame(req, 8, nil, nil))
		if req.IsFlexible() {
			out = append(out, requestFrame(req, 9, &clientID, []byte{1, 5, 2, 'h', 'i'}))
		}
	}
	out = append(out,
		header(9999, 0, 1, 0, ""),
		header(3, 99, 1, -1, ""),
		header(18, 99, 1, 4, "fuzz"),
		header(0, 2, 1, -2, ""),
	)
	return out
}

// FuzzReadFrame feeds arbitrary bytes to ReadFrame with a small maximum and
// checks each frame against the size prefix it came from.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range fuzzFrames() {
		f.Add(sizePrefixed(uint32(len(fr)), fr))
		f.Add(sizePrefixed(uint32(len(fr)+3), fr))
	}
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9})
	f.Add([]byte{0, 0})
	const max = 256
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for off := 0; ; {
			frame, err := protocol.ReadFrame(r, max, buf)
			rem := data[off:]
			switch {
			case len(rem) == 0:
				if err != io.EOF {
					t.Fatalf("at end of input: %v, want io.EOF", err)
				}
				return
			case len(rem) < 4:
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("%d bytes of size: %v, want io.ErrUnexpectedEOF", len(rem), err)
				}
				return
			}
			size := int32(binary.BigEndian.Uint32(rem))
			switch {
			case size < 8 || size > max:
				if !errors.Is(err, protocol.ErrFrameSize) {
					t.Fatalf("size %d: %v, want ErrFrameSize", size, err)
				}
				return
			case int(size) > len(rem)-4:
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("size %d with %d bytes: %v, want io.ErrUnexpectedEOF", size, len(rem)-4, err)
				}
				return
			}
			if err != nil || !bytes.Equal(frame, rem[4:4+size]) {
				t.Fatalf("size %d: frame %x err %v, want %x", size, frame, err, rem[4:4+size])
			}
			if cap(frame) > max && cap(frame) > cap(buf) {
				t.Fatalf("frame of %d bytes has capacity %d, beyond the maximum", len(frame), cap(frame))
			}
			off += 4 + int(size)
			buf = frame
		}
	})
}

// FuzzDecodeRequest decodes arbitrary frames the way the server does:
// header, then — if kmsg knows the API at that version — the body. Nothing
// may panic, and whatever decodes must encode again and answer with a
// well-formed response frame.
func FuzzDecodeRequest(f *testing.F) {
	for _, fr := range fuzzFrames() {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, rest, err := protocol.ParseRequestHeader(frame)
		if err != nil {
			if !errors.Is(err, protocol.ErrHeaderMalformed) {
				t.Fatalf("header error %v is not ErrHeaderMalformed", err)
			}
			return
		}
		if len(frame) < 10 || h.APIKey != int16(binary.BigEndian.Uint16(frame)) || h.CorrelationID != int32(binary.BigEndian.Uint32(frame[4:])) {
			t.Fatalf("header %+v does not match the frame", h)
		}
		if len(rest) > len(frame)-10 || !bytes.HasSuffix(frame, rest) || !strings.Contains(string(frame[10:]), h.ClientID) {
			t.Fatalf("rest or client id not taken from the frame: %+v rest %d bytes of %d", h, len(rest), len(frame))
		}
		probe := kmsg.RequestForKey(h.APIKey)
		if probe == nil || h.APIVersion < 0 || h.APIVersion > probe.MaxVersion() {
			return // the server closes the connection before decoding
		}
		req, err := protocol.DecodeRequest(h, rest)
		if err != nil {
			return
		}
		if req.Key() != h.APIKey || req.GetVersion() != h.APIVersion {
			t.Fatalf("decoded %d v%d from header %+v", req.Key(), req.GetVersion(), h)
		}
		enc := req.AppendTo(nil)
		again := kmsg.RequestForKey(h.APIKey)
		again.SetVersion(h.APIVersion)
		if err := again.ReadFrom(enc); err != nil {
			t.Fatalf("%s v%d: re-encoded request does not decode: %v", kmsg.NameForKey(h.APIKey), h.APIVersion, err)
		}
		resp := req.ResponseKind()
		out := protocol.AppendResponse(nil, h.CorrelationID, resp)
		if int(binary.BigEndian.Uint32(out)) != len(out)-4 || int32(binary.BigEndian.Uint32(out[4:])) != h.CorrelationID {
			t.Fatalf("malformed response frame for %+v", h)
		}
	})
}
