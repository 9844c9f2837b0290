package netproxy

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// upstream serves each connection to a loopback port with serve, in a
// goroutine of its own, until the test ends; accepted counts them.
func upstream(t *testing.T, serve func(net.Conn)) (port int, accepted *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, accepted
}

// rawUpstream records the exact bytes of each connection it accepts and
// counts the connections.
func rawUpstream(t *testing.T) (port int, got chan string, accepted *atomic.Int32) {
	got = make(chan string, 16)
	port, accepted = upstream(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(4 * time.Second))
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	return port, got, accepted
}

// captured sends payload on a connection served like a captured one made
// for ok.test (synthetic address 198.18.0.7) and returns what the upstream
// received, or "" when the broker connected nowhere.
func captured(t *testing.T, payload string) string {
	t.Helper()
	port, got, accepted := rawUpstream(t)
	p, _ := tunnelProxy(t, Options{HTTPPorts: []int{port}})
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fake := netip.MustParseAddr("198.18.0.7")
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		defer c.Close()
		var entry Conn
		p.captureHTTP(c, "ok.test", fake, netip.AddrPortFrom(fake, uint16(port)), &entry)
	}()
	c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go io.Copy(io.Discard, c)
	c.Write([]byte(payload))
	c.CloseWrite()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the broker still serves %q", payload)
	}
	if accepted.Load() == 0 {
		return ""
	}
	return <-got
}

// The Host that reaches the server is rebuilt from the name that was
// checked: no spelling of the client's (a port that carries a name,
// Unicode letters that fold to ASCII ones, bytes that Write would blank)
// reaches it. Attacks from a review; HAProxy routed the first two to
// another tenant before the fix.
func TestHostRebuiltFromCheckedName(t *testing.T) {
	for host, want := range map[string]string{
		"ok.test:1,evil.test": "", // port part carrying a name
		"ok.test:x.evil.test": "",
		"ok.test:evil.test":   "",
		"[ok.test]:evil.test": "",
		"o\u212a.test":        "", // KELVIN SIGN folds to k
		"ok.te\u017ft":        "", // LONG S folds to s
		"ok.test:@evil.test":  "", // Write would blank the Host
		"ok.test:80 x":        "",
		"ok.test:80/x":        "",
		"OK.TEST.":            "Host: ok.test\r\n",
		"ok.test:8080":        "Host: ok.test:8080\r\n",
		"198.18.0.7":          "Host: ok.test\r\n",
		"also.test":           "Host: also.test\r\n",
		"evil.test":           "",
	} {
		got := captured(t, "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		if want == "" && got != "" {
			t.Errorf("Host %q: the upstream got %q, want nothing", host, got)
		}
		if want != "" && !strings.Contains(got, want) {
			t.Errorf("Host %q: the upstream got %q, want %q", host, got, want)
		}
	}
	// The absolute form names the host too.
	if got := captured(t, "GET http://o%E2%84%AA.test/ HTTP/1.1\r\n\r\n"); got != "" {
		t.Errorf("absolute form with a KELVIN SIGN: the upstream got %q", got)
	}
}
