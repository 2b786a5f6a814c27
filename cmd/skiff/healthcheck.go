package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// healthCorrelationID marks the health check's request.
const healthCorrelationID = 0x5ea1

// healthcheck sends an ApiVersions request to the broker listening on addr
// (a wildcard host means this machine) and checks that it answers. It is
// what the container image's HEALTHCHECK runs: distroless images have no
// shell or nc.
func healthcheck(addr string, timeout time.Duration) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))

	// Request header v1: api key, version, correlation id, client id.
	req := kmsg.NewPtrApiVersionsRequest()
	body := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, 0)
	body = binary.BigEndian.AppendUint32(body, healthCorrelationID)
	clientID := "skiff-healthcheck"
	body = binary.BigEndian.AppendUint16(body, uint16(len(clientID)))
	body = append(body, clientID...)
	body = req.AppendTo(body) // v0 has an empty body
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := c.Write(append(frame, body...)); err != nil {
		return err
	}
	resp, err := protocol.ReadFrame(c, 1<<20, nil)
	if err != nil {
		return err
	}
	if len(resp) < 6 || binary.BigEndian.Uint32(resp) != healthCorrelationID {
		return fmt.Errorf("unexpected answer to ApiVersions")
	}
	if code := int16(binary.BigEndian.Uint16(resp[4:])); code != 0 {
		return fmt.Errorf("ApiVersions error code %d", code)
	}
	return nil
}
