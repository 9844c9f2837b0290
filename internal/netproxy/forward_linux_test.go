package netproxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock/internal/netns"
	"github.com/airlock-sandbox/airlock/internal/netns/netnstest"
	"github.com/airlock-sandbox/airlock/internal/netproxy"
)

const publishPort = 18080 // inside the sandbox's own namespace

type forwardResult struct {
	Forward, Forward6, Other outcome
	ListenErr                string
	Served                   int
}

// forwardScenario runs inside a sandbox with only --net-forward and
// --publish: it uses the forward, tries a host port that is not forwarded,
// and serves publishPort until a client sends "quit".
func forwardScenario() any {
	var r forwardResult
	try := func(addr string) outcome {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return outcome{Err: err.Error(), Reset: isRefused(err)}
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "hello %s\n", addr)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return outcome{Err: err.Error(), Reset: isRefused(err)}
		}
		return outcome{Reply: line}
	}
	r.Forward = try("127.0.0.1:" + os.Getenv("FWD_PORT"))
	r.Forward6 = try("[::1]:" + os.Getenv("FWD6_PORT"))
	r.Other = try("127.0.0.1:" + os.Getenv("OTHER_PORT"))
	ln, err := net.Listen("tcp", fmt.Sprint("127.0.0.1:", publishPort))
	if err != nil {
		r.ListenErr = err.Error()
		return r
	}
	defer ln.Close()
	quit := make(chan struct{})
	var served atomic.Int32
	go serveEach(ln, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		served.Add(1)
		fmt.Fprintf(c, "sandbox got %s", line)
		if line == "quit\n" {
			close(quit)
			return
		}
		io.Copy(io.Discard, c)
	})
	select {
	case <-quit:
	case <-time.After(60 * time.Second):
	}
	r.Served = int(served.Load())
	return r
}

func TestLiveForwardAndPublish(t *testing.T) {
	fwd := newCountingServer(t, "127.0.0.1:0", "forwarded-server")
	other := newCountingServer(t, "127.0.0.1:0", "other-server")
	fwd6 := newCountingServer(t, "[::1]:0", "forwarded-v6-server")
	p, err := netproxy.New(netproxy.Policy{}, netproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fwdAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(fwd.port()))
	fwd6Addr := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(fwd6.port()))
	cfg := netns.Config{NoEgress: true, Forward: []netip.AddrPort{fwdAddr, fwd6Addr}, Pool: 2}
	l, sb := netnstest.Start(t, cfg, "forward", fmt.Sprint("FWD_PORT=", fwd.port()), fmt.Sprint("FWD6_PORT=", fwd6.port()),
		fmt.Sprint("OTHER_PORT=", other.port()))
	defer sb.Kill()
	if l.Egress() || len(l.Forward) != 2 || len(l.Pool) != 2 {
		t.Fatalf("helper sent egress=%v, %d forwards, %d pool sockets; want only 2 forwards and 2", l.Egress(), len(l.Forward), len(l.Pool))
	}
	if err := p.Serve(l); err != nil {
		t.Fatal(err)
	}
	host, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(host, netip.MustParseAddrPort(fmt.Sprint("127.0.0.1:", publishPort))); err != nil {
		t.Fatal(err)
	}
	hostAddr := host.Addr().String()

	// ask sends a line over a new published connection and returns the
	// connection (open) and the reply ("" when refused or reset).
	ask := func(line string) (io.Closer, string) {
		c, err := net.Dial("tcp", hostAddr)
		if err != nil { // reset at once by the broker
			return nopCloser{}, ""
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "%s\n", line)
		reply, _ := bufio.NewReader(c).ReadString('\n')
		c.SetDeadline(time.Time{})
		return c, reply
	}
	entries := func(want string) int {
		n := 0
		for _, c := range p.Log() {
			if c.Proto == "publish" && strings.Contains(c.Reason, want) {
				n++
			}
		}
		return n
	}
	waitLog := func(want string, n int) {
		for deadline := time.Now().Add(10 * time.Second); entries(want) < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %d %q entries in the log: %+v", n, want, p.Log())
			}
		}
	}

	// Until the sandbox listens, connections are refused; those attempts
	// must not use up the pool of 2.
	var reply string
	for deadline := time.Now().Add(20 * time.Second); reply == "" && time.Now().Before(deadline); {
		var c io.Closer
		c, reply = ask("ping")
		c.Close()
		if reply == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if reply != "sandbox got ping\n" {
		t.Fatalf("published port never answered: %q\nlog %+v", reply, p.Log())
	}
	waitLog("publish", 1+entries("connect failed"))
	refused := entries("connect failed")

	c1, r1 := ask("one")
	c2, r2 := ask("two")
	c3, r3 := ask("three") // the pool of 2 is in use
	c3.Close()
	if r1 != "sandbox got one\n" || r2 != "sandbox got two\n" || r3 != "" {
		t.Errorf("two open connections then a third: %q %q %q; want two replies and a refusal", r1, r2, r3)
	}
	waitLog("sockets of the sandbox's pool are in use", 1)
	c1.Close()
	waitLog("publish", refused+3) // ping, the refusal, then "one" finished
	c4, r4 := ask("four")
	c4.Close()
	if r4 != "sandbox got four\n" {
		t.Errorf("after a connection ended its socket was not reused: %q", r4)
	}
	c2.Close()
	waitLog("publish", refused+5) // "four" and "two" finished: both sockets are back
	cq, rq := ask("quit")
	cq.Close()
	if rq != "sandbox got quit\n" {
		t.Errorf("after every connection ended, a new one got %q", rq)
	}

	var r forwardResult
	sb.Wait(t, &r)
	if r.ListenErr != "" {
		t.Fatalf("sandbox could not listen: %s", r.ListenErr)
	}
	if r.Forward.Reply != fmt.Sprintf("forwarded-server: hello 127.0.0.1:%d\n", fwd.port()) || fwd.accepted.Load() != 1 {
		t.Errorf("forward: %+v, server accepted %d", r.Forward, fwd.accepted.Load())
	}
	if r.Forward6.Reply != fmt.Sprintf("forwarded-v6-server: hello [::1]:%d\n", fwd6.port()) || fwd6.accepted.Load() != 1 {
		t.Errorf("IPv6 forward: %+v, server accepted %d", r.Forward6, fwd6.accepted.Load())
	}
	if other.accepted.Load() != 0 || !r.Other.Reset {
		t.Errorf("a host port that is not forwarded: %+v, its server accepted %d", r.Other, other.accepted.Load())
	}
	if r.Served != 5 {
		t.Errorf("the sandbox server saw %d requests, want 5 (ping, one, two, four, quit)", r.Served)
	}
	p.Close()
	var fwdLogged bool
	for _, c := range p.Log() {
		if c.Proto == "forward" && c.Port == fwd.port() && c.Allowed && c.BytesOut > 0 && c.BytesIn > 0 {
			fwdLogged = true
		}
	}
	if !fwdLogged {
		t.Errorf("forward not in the log: %+v", p.Log())
	}
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
