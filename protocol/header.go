package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrHeaderMalformed is returned for a request header that cannot be parsed.
var ErrHeaderMalformed = errors.New("protocol: malformed request header")

// ApiVersionsKey is the API key of ApiVersions, whose responses always use
// response header v0 so that a client that does not yet know the broker's
// versions can parse them.
const ApiVersionsKey = 18

// RequestHeader is a decoded request header (v1 or v2; v0 is only used by
// ControlledShutdown v0, which no client sends to a KRaft-era broker).
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      string
}

// ParseRequestHeader decodes the fixed part of a request header (api key,
// version, correlation id and client id) from a frame. It returns the bytes
// after the client id; whether header tagged fields follow depends on the
// API and version, which DecodeRequest knows.
func ParseRequestHeader(frame []byte) (RequestHeader, []byte, error) {
	var h RequestHeader
	if len(frame) < 10 {
		return h, nil, fmt.Errorf("%w: %d bytes", ErrHeaderMalformed, len(frame))
	}
	h.APIKey = int16(binary.BigEndian.Uint16(frame[0:]))
	h.APIVersion = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	// The client id is a nullable (non-compact) string even in header v2.
	n := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if n >= 0 {
		if int(n) > len(rest) {
			return h, nil, fmt.Errorf("%w: client id length %d", ErrHeaderMalformed, n)
		}
		h.ClientID = string(rest[:n])
		rest = rest[n:]
	} else if n != -1 {
		return h, nil, fmt.Errorf("%w: client id length %d", ErrHeaderMalformed, n)
	}
	return h, rest, nil
}

// DecodeRequest decodes the body of a request whose header was parsed by
// ParseRequestHeader. The caller must have checked that the API key and
// version are supported. Header tagged fields (header v2, used by flexible
// versions) are skipped: Kafka defines none that a broker must act on.
func DecodeRequest(h RequestHeader, rest []byte) (kmsg.Request, error) {
	req := kmsg.RequestForKey(h.APIKey)
	if req == nil {
		return nil, fmt.Errorf("protocol: unknown api key %d", h.APIKey)
	}
	req.SetVersion(h.APIVersion)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, err
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("protocol: decoding %s v%d: %w", kmsg.NameForKey(h.APIKey), h.APIVersion, err)
	}
	return req, nil
}

// SkipTags skips a tagged-field section and returns what follows it, for
// callers that walk a flexible request's bytes before it is decoded.
func SkipTags(b []byte) ([]byte, error) { return skipTags(b) }

// skipTags skips a tagged-field section: a count, then for each field its
// tag and a length-prefixed value.
func skipTags(b []byte) ([]byte, error) {
	count, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	for i := uint64(0); i < count; i++ {
		if _, b, err = uvarint(b); err != nil {
			return nil, err
		}
		var size uint64
		if size, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if size > uint64(len(b)) {
			return nil, fmt.Errorf("%w: tagged field of %d bytes", ErrHeaderMalformed, size)
		}
		b = b[size:]
	}
	return b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad varint", ErrHeaderMalformed)
	}
	return v, b[n:], nil
}

// AppendResponse appends a complete response frame to dst: the size prefix,
// the response header (v1 with an empty tag section for flexible responses,
// v0 otherwise and always for ApiVersions) and the body.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != ApiVersionsKey {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
