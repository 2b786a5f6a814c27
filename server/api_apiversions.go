package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ApiVersions, 0, 4, (*Server).handleApiVersions) }

func (s *Server) handleApiVersions(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	// KIP-511: v3+ clients send their software name and version, which must
	// be non-empty and made of alphanumerics, '.', '-'.
	if req.Version >= 3 && (!validSoftwareField(req.ClientSoftwareName) || !validSoftwareField(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	fillApiVersions(resp)
	if req.Version >= 3 {
		s.fillFeatures(resp)
	}
	return resp, nil
}

// apiVersionsUnsupported answers an ApiVersions request at a version the
// broker does not know: a v0 response with UNSUPPORTED_VERSION and, as
// Kafka does (KIP-511, ApiVersionsRequest.getErrorResponse), only
// ApiVersions' own range, so the client retries at a version both speak.
// Listing every API here made franz-go (which sends v5 first) take the
// table from this v0 answer, which has no feature levels, and so never
// see transaction.version 2.
func apiVersionsUnsupported() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	e := apis[int16(kmsg.ApiVersions)]
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = e.key, e.min, e.max
	resp.ApiKeys = append(resp.ApiKeys, k)
	return resp
}

func fillApiVersions(resp *kmsg.ApiVersionsResponse) {
	for _, e := range supportedAPIs() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = e.key, e.min, e.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
}

func validSoftwareField(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
