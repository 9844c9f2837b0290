package airlock_test

import (
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// freePort returns a host loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// netModes are the network modes --net-forward and --publish work with.
var netModes = []struct {
	name string
	net  airlock.Network
}{
	{"none", airlock.Network{Mode: airlock.NetNone}},
	{"allow", airlock.Network{Mode: airlock.NetAllow, Allow: []string{"example.invalid"}}},
}

// Issue 6: a forwarded host loopback service is reachable inside at the
// same address; another host loopback port is not.
func TestNetForward(t *testing.T) {
	for _, m := range netModes {
		t.Run(m.name, func(t *testing.T) {
			fwd, other := serve(t, "127.0.0.1"), serve(t, "127.0.0.1")
			p := policy(t)
			p.Network = m.net
			p.Network.Forward = []string{fwd.port()}
			out, res, err := run(t, p, `
python3 - <<'P'
import socket
for port in (`+fwd.port()+`, `+other.port()+`):
    try:
        s = socket.create_connection(("127.0.0.1", port), 3)
        s.sendall(b"ping")
        print(port, "got", s.recv(100))
        s.close()
    except Exception as e:
        print(port, "failed", type(e).__name__)
P`)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, fwd.port()+" got b'hello from outside") {
				t.Errorf("forwarded port unreachable inside:\n%s", out)
			}
			// The server counts the bytes when the relay ends.
			for deadline := time.Now().Add(5 * time.Second); fwd.bytes.Load() < 4 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if fwd.conns.Load() != 1 || fwd.bytes.Load() != 4 {
				t.Errorf("forwarded server saw %d connections, %d bytes; want 1, 4\n%s", fwd.conns.Load(), fwd.bytes.Load(), out)
			}
			if other.conns.Load() != 0 || !strings.Contains(out, other.port()+" failed") {
				t.Errorf("a host port that is not forwarded: its server saw %d connections\n%s", other.conns.Load(), out)
			}
			found := false
			for _, c := range res.Connections {
				found = found || (c.Port == atoi(fwd.port()) && c.Allowed && c.Reason == "forward" && c.BytesOut == 4)
			}
			if !found {
				t.Errorf("forward not in the result: %+v", res.Connections)
			}
		})
	}
}

// Issue 6: a server inside the sandbox is reachable from the host through
// --publish HOSTPORT:SANDBOXPORT.
func TestNetPublish(t *testing.T) {
	for _, m := range netModes {
		t.Run(m.name, func(t *testing.T) {
			hostPort := freePort(t)
			p := policy(t)
			p.Network = m.net
			p.Network.Publish = []string{strconv.Itoa(hostPort) + ":8000"}
			c := airlock.Command(p, "python3", "-c", `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000)); s.listen(8)
c, _ = s.accept()
c.sendall(b"hello from inside " + c.recv(100))
c.close()
`)
			var out strings.Builder
			c.Stdout, c.Stderr = &out, &out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			var reply []byte
			for deadline := time.Now().Add(20 * time.Second); len(reply) == 0 && time.Now().Before(deadline); {
				conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(hostPort))
				if err == nil {
					conn.SetDeadline(time.Now().Add(10 * time.Second))
					conn.Write([]byte("ping"))
					reply, _ = io.ReadAll(conn)
					conn.Close()
				}
				if len(reply) == 0 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			err := c.Wait()
			if string(reply) != "hello from inside ping" {
				t.Fatalf("published port answered %q (run: %v)\n%s", reply, err, out.String())
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			found := false
			for _, conn := range c.Result.Connections {
				found = found || (conn.Port == 8000 && conn.Allowed && conn.Reason == "publish" && conn.BytesOut == int64(len(reply)))
			}
			if !found {
				t.Errorf("publish not in the result: %+v", c.Result.Connections)
			}
			// The port is closed on the host once the run is over.
			if conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(hostPort)); err == nil {
				conn.Close()
				t.Errorf("published port still open after the run")
			}
		})
	}
}

func TestNetForwardPublishRejected(t *testing.T) {
	cases := []struct {
		net  airlock.Network
		want string
	}{
		{airlock.Network{Mode: airlock.NetNone, Publish: []string{"99999"}}, "--publish 99999: port out of range"},
		{airlock.Network{Mode: airlock.NetNone, Publish: []string{"80:x"}}, "--publish 80:x: "},
		{airlock.Network{Mode: airlock.NetNone, Publish: []string{"8080", "9090:8080"}}, "--publish 9090:8080: sandbox port 8080 published twice"},
		{airlock.Network{Mode: airlock.NetNone, Forward: []string{"10.1.2.3:5432"}}, "--net-forward 10.1.2.3:5432: not a loopback address"},
		{airlock.Network{Mode: airlock.NetNone, Forward: []string{"5432"}, Publish: []string{"9000:5432"}}, "--publish 9000:5432: sandbox port 5432 is a --net-forward port"},
		{airlock.Network{Mode: airlock.NetNone, Forward: []string{"localhost:5432"}}, "--net-forward localhost:5432: "},
		{airlock.Network{Mode: airlock.NetNone, Forward: []string{"70000"}}, "--net-forward 70000: "},
		{airlock.Network{Mode: airlock.NetAllow, Allow: []string{"example.invalid"}, Forward: []string{"127.0.0.1:53"}}, "--net-forward 127.0.0.1:53: port 53 is used"},
		{airlock.Network{Mode: airlock.NetHost, Forward: []string{"5432"}}, "not --net host"},
	}
	for _, tc := range cases {
		p := policy(t)
		p.Network = tc.net
		out, _, err := run(t, p, "echo ran")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(out, "ran") {
			t.Errorf("%+v: err %v, output %q; want an error containing %q", tc.net, err, out, tc.want)
		}
	}
	// A host port that is taken fails the run, naming the value.
	busy := serve(t, "127.0.0.1")
	p := policy(t)
	p.Network.Publish = []string{busy.port()}
	out, _, err := run(t, p, "echo ran")
	if err == nil || !strings.Contains(err.Error(), "--publish "+busy.port()+": ") || strings.Contains(out, "ran") {
		t.Errorf("publishing a busy host port: err %v, output %q", err, out)
	}
}

// The -v lines print names the sandbox chose (a DNS question, a CONNECT
// host): control bytes in them must reach the user's terminal escaped, or
// the sandbox could recolour the terminal or forge airlock's own lines.
func TestVerboseEscapesSandboxText(t *testing.T) {
	if cliBin == "" {
		t.Fatal("the airlock CLI did not build")
	}
	// DNS questions with an ESC sequence and a C1 control in a label.
	script := `
import socket
for lab in [b"\x1b[31mX", b"\x9bX"]:
    q = b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6 + bytes([len(lab)]) + lab + b"\x00\x00\x01\x00\x01"
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(2)
    u.sendto(q, ("127.0.0.1", 53))
    try: u.recv(512)
    except Exception: pass
`
	out, err := exec.Command(cliBin, "run", "-v", "--net", "allow=ok.example", "--", "python3", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("airlock run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `net denied \x1b[31mX.`) || !strings.Contains(string(out), `net denied \x9bX.`) {
		t.Errorf("the refused names are not reported, escaped:\n%q", out)
	}
	if strings.IndexByte(string(out), 0x1b) >= 0 || strings.IndexByte(string(out), 0x9b) >= 0 {
		t.Errorf("control bytes from the sandbox reached the terminal:\n%q", out)
	}
}
