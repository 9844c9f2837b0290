package airlock_test

import (
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/airlock-sandbox/airlock"
)

// hostAddr returns a non-loopback address of this host: the "internet" for
// egress tests (there is no real one here).
func hostAddr(t *testing.T) string {
	ifs, _ := net.InterfaceAddrs()
	for _, a := range ifs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Skip("this host has no non-loopback IPv4 address to serve as an egress target")
	return ""
}

type countingServer struct {
	ln    net.Listener
	conns atomic.Int32
	bytes atomic.Int64
}

func serve(t *testing.T, addr string) *countingServer {
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer c.Close()
				c.Write([]byte("hello from outside\n"))
				n, _ := io.Copy(io.Discard, c)
				s.bytes.Add(n)
			}()
		}
	}()
	return s
}

func (s *countingServer) port() string { return strconv.Itoa(s.ln.Addr().(*net.TCPAddr).Port) }

// F1/F4 and issue 6: only the allowed destination is reachable, also for a
// program that ignores proxy variables; everything is in the result.
func TestNetworkAllowList(t *testing.T) {
	ip := hostAddr(t)
	allowed, denied := serve(t, ip), serve(t, ip)
	p := policy(t)
	p.Network = airlock.Network{Mode: airlock.NetAllow, Allow: []string{ip + ":" + allowed.port()}, AllowPrivate: true}
	script := `
python3 - <<'P'
import socket
for port in (` + allowed.port() + `, ` + denied.port() + `):
    try:
        s = socket.create_connection(("` + ip + `", port), 3)
        s.sendall(b"ping")
        print(port, "got", s.recv(100))
    except Exception as e:
        print(port, "failed", type(e).__name__)
for host in ("169.254.169.254", "127.0.0.1"):
    try:
        s = socket.create_connection((host, 80), 3); s.sendall(b"x"); print(host, "got", s.recv(10))
    except Exception as e:
        print(host, "failed", type(e).__name__)
P`
	out, res, err := run(t, p, script)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, allowed.port()+" got b'hello from outside") {
		t.Errorf("allowed destination unreachable:\n%s", out)
	}
	if denied.conns.Load() != 0 {
		t.Errorf("the denied server saw %d connections", denied.conns.Load())
	}
	if allowed.conns.Load() != 1 || allowed.bytes.Load() != 4 {
		t.Errorf("allowed server saw %d connections, %d bytes; want 1, 4", allowed.conns.Load(), allowed.bytes.Load())
	}
	var seenAllowed, seenDenied bool
	for _, c := range res.Connections {
		if c.Port == atoi(allowed.port()) && c.Allowed && c.BytesOut == 4 {
			seenAllowed = true
		}
		if c.Port == atoi(denied.port()) && !c.Allowed {
			seenDenied = true
		}
	}
	if !seenAllowed || !seenDenied {
		t.Errorf("result connections incomplete: %+v", res.Connections)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
