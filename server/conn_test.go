package server

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/skiffmq/skiff/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestHandlerPanicClosesOnlyThatConnection: a panicking handler must close
// its connection and leave the broker serving others.
func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	const key = kmsg.DescribeDelegationToken // an API Skiff does not serve
	register(key, 0, 0, func(*Server, *request) (kmsg.Response, error) { panic("handler bug") })
	t.Cleanup(func() { delete(apis, int16(key)) })

	srv, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Logger: zerolog.New(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	send := func(req kmsg.Request) (net.Conn, []byte, error) {
		nc, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		body := req.AppendTo(nil)
		hdr := []byte{byte(req.Key() >> 8), byte(req.Key()), byte(req.GetVersion() >> 8), byte(req.GetVersion()), 0, 0, 0, 7, 0xff, 0xff}
		if req.IsFlexible() {
			hdr = append(hdr, 0)
		}
		frame := append([]byte{0, 0, 0, 0}, hdr...)
		frame = append(frame, body...)
		n := len(frame) - 4
		frame[0], frame[1], frame[2], frame[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		resp, err := protocol.ReadFrame(nc, 1<<20, nil)
		return nc, resp, err
	}

	panicking := kmsg.NewPtrDescribeDelegationTokenRequest()
	nc, _, err := send(panicking)
	defer nc.Close()
	if err == nil {
		t.Fatal("the connection of a panicking handler got a response; want it closed")
	}
	healthy := kmsg.NewPtrApiVersionsRequest()
	healthy.Version = 0
	nc2, resp, err := send(healthy)
	defer nc2.Close()
	if err != nil || len(resp) < 4 {
		t.Fatalf("broker stopped serving after a handler panic: %v", err)
	}
}
