package netproxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock/internal/netns"
)

type fixedResolver map[string][]netip.Addr

func (r fixedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// hostListeners stands in for the namespace's sockets with ordinary ones.
func hostListeners(t *testing.T) *netns.Listeners {
	tcp := func() *net.TCPListener {
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return &netns.Listeners{Capture4: tcp(), HTTP: tcp(), DNS4: udp}
}

// An upstream that accepts and then stays silent must not keep Close from
// returning, and the proxy answers CONNECT by policy.
func TestHTTPProxyAndClose(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answers
		}
	}()
	lo := netip.MustParseAddr("127.0.0.1")
	opts := Options{Resolver: fixedResolver{"quiet.test": {lo}}}
	PermitForTest(&opts, lo)
	p, err := New(Policy{Allow: []string{"quiet.test"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	l := hostListeners(t)
	if err := p.Serve(l); err != nil {
		t.Fatal(err)
	}
	port := silent.Addr().(*net.TCPAddr).Port
	connect := func(target string) (*http.Response, net.Conn) {
		c, err := net.Dial("tcp", l.HTTP.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, c
	}
	resp, denied := connect(fmt.Sprintf("other.test:%d", port))
	denied.Close()
	if resp.StatusCode != 403 {
		t.Errorf("CONNECT other.test: %s, want 403", resp.Status)
	}
	resp, held := connect(fmt.Sprintf("quiet.test:%d", port))
	defer held.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT quiet.test: %s", resp.Status)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a relay was idle")
	}
	held.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("client connection not closed by Close: %v", err)
	}
	var sawDenied bool
	for _, c := range p.Log() {
		sawDenied = sawDenied || (c.Name == "other.test" && !c.Allowed && c.Proto == "http-connect")
	}
	if !sawDenied {
		t.Errorf("denied CONNECT not logged: %+v", p.Log())
	}
}

// tunnelProxy serves a proxy that allows ok.test and also.test, both
// at 127.0.0.1, on host listeners; opts adds the checked ports.
func tunnelProxy(t *testing.T, opts Options) (*Proxy, *netns.Listeners) {
	lo := netip.MustParseAddr("127.0.0.1")
	opts.Resolver = fixedResolver{"ok.test": {lo}, "also.test": {lo}}
	PermitForTest(&opts, lo)
	p, err := New(Policy{Allow: []string{"ok.test", "also.test"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	l := hostListeners(t)
	if err := p.Serve(l); err != nil {
		t.Fatal(err)
	}
	return p, l
}

// tunnelTo opens a CONNECT tunnel to ok.test:port through l's proxy port.
func tunnelTo(t *testing.T, l *netns.Listeners, port int) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", l.HTTP.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT ok.test:%d HTTP/1.1\r\nHost: ok.test:%d\r\n\r\n", port, port)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		c.Close()
		t.Fatalf("CONNECT ok.test: %v %v", resp, err)
	}
	return c, br
}

// A CONNECT tunnel to an allowed name carrying a TLS ClientHello for
// another name (CDN fronting) is cut before the upstream sees a byte,
// unless that name is allowed too; the refusal is logged.
func TestConnectTunnelChecksSNI(t *testing.T) {
	got := make(chan int, 8)
	port, _ := upstream(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := io.ReadAtLeast(c, make([]byte, 5), 5)
		got <- n
	})
	p, l := tunnelProxy(t, Options{SNIPorts: []int{port}})
	hello := func(sni string) (upstreamBytes int) {
		c, _ := tunnelTo(t, l, port)
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
		select {
		case n := <-got:
			return n
		case <-time.After(3 * time.Second):
			return 0
		}
	}
	if n := hello("evil.test"); n != 0 {
		t.Errorf("a ClientHello for evil.test through a tunnel to ok.test reached the upstream (%d bytes)", n)
	}
	if n := hello("also.test"); n < 5 {
		t.Errorf("a ClientHello for an allowed name did not reach the upstream (%d bytes)", n)
	}
	if n := hello("ok.test"); n < 5 {
		t.Errorf("a ClientHello for the tunnel's own name did not reach the upstream (%d bytes)", n)
	}
	var logged bool
	for _, e := range p.Log() {
		logged = logged || (!e.Allowed && e.Proto == "http-connect" && strings.Contains(e.Reason, `"evil.test"`))
	}
	if !logged {
		t.Errorf("the fronted tunnel is not logged as refused: %+v", p.Log())
	}
}

// A request head without end must not make the broker buffer it all: it
// stops reading at maxRequestHead and drops the connection.
func TestRequestHeadBounded(t *testing.T) {
	p, err := New(Policy{Allow: []string{"ok.test"}}, Options{Resolver: fixedResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l := hostListeners(t)
	if err := p.Serve(l); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", l.HTTP.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET http://ok.test/ HTTP/1.1\r\nHost: ok.test\r\nX-Long: ")
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	var sent int
	for sent < 256<<20 {
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= 64<<20 {
		t.Errorf("the broker read %d MiB of one request head", sent>>20)
	}
}

// A CONNECT tunnel to a name on an HTTP port is held to the same Host
// check as a captured connection: checked from the server's side.
func TestConnectTunnelChecksHost(t *testing.T) {
	var mu sync.Mutex
	var hosts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host+r.URL.Path)
		mu.Unlock()
		fmt.Fprint(w, "hi")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	p, l := tunnelProxy(t, Options{HTTPPorts: []int{port}})
	tunnel := func(send string) string {
		c, br := tunnelTo(t, l, port)
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, send)
		b, _ := io.ReadAll(br)
		return string(b)
	}
	if out := tunnel("GET /evil HTTP/1.1\r\nHost: evil.test\r\n\r\n"); out != "" {
		t.Errorf("Host evil.test through a tunnel to ok.test was answered: %q", out)
	}
	if out := tunnel("GET /also HTTP/1.1\r\nHost: also.test\r\nConnection: close\r\n\r\n"); !strings.HasSuffix(out, "hi") {
		t.Errorf("Host also.test (allowed) through a tunnel to ok.test: %q", out)
	}
	if out := tunnel("GET /one HTTP/1.1\r\nHost: ok.test\r\n\r\nGET /two HTTP/1.1\r\nHost: also.test\r\nConnection: close\r\n\r\n"); strings.Count(out, "HTTP/1.1 200") != 2 {
		t.Errorf("two allowed requests in a tunnel: want two answers, got %q", out)
	}
	if out := tunnel("GET /three HTTP/1.1\r\nHost: ok.test\r\n\r\nGET /four HTTP/1.1\r\nHost: evil.test\r\n\r\n"); strings.Count(out, "HTTP/1.1 200") != 1 {
		t.Errorf("requests for ok.test then evil.test in a tunnel: want the first answered only, got %q", out)
	}
	var logged bool
	for _, e := range p.Log() {
		logged = logged || (!e.Allowed && strings.Contains(e.Reason, `a later request on the connection: HTTP Host "evil.test"`))
	}
	if !logged {
		t.Errorf("the refused later request is not logged: %+v", p.Log())
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"also.test/also", "ok.test/one", "also.test/two", "ok.test/three"}; !slices.Equal(hosts, want) {
		t.Errorf("the server saw %q, want %q", hosts, want)
	}
}

// The log keeps each entry's sandbox-chosen text small: a CONNECT host or
// a Host header of tens of KiB (quoted to four times that) must not make
// MaxLog entries cost gigabytes (an attack review measured 1-4 MiB each).
func TestLogEntriesBounded(t *testing.T) {
	port, _, _ := rawUpstream(t)
	p, l := tunnelProxy(t, Options{HTTPPorts: []int{port}})
	c, err := net.Dial("tcp", l.HTTP.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT %s:443 HTTP/1.1\r\n\r\n", strings.Repeat("a", 60<<10))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
	c, _ = tunnelTo(t, l, port)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bytes.Repeat([]byte{0x80}, 60<<10))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
	var refused int
	for deadline := time.Now().Add(5 * time.Second); refused < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		refused = 0
		for _, e := range p.Log() {
			if !e.Allowed {
				refused++
			}
		}
	}
	if refused < 2 {
		t.Fatalf("want two refusals logged: %+v", p.Log())
	}
	for _, e := range p.Log() {
		if len(e.Name) > maxLogName || len(e.Reason) > maxLogReason {
			t.Errorf("log entry of %d+%d bytes: %.80q", len(e.Name), len(e.Reason), e.Reason)
		}
	}
}

// When the server closes a kept connection, the broker stops waiting for
// the client's next request: nothing more could be answered, and an idle
// client must not pin the connection (and its sockets) for good.
func TestServerCloseEndsKeptConnection(t *testing.T) {
	port, _ := upstream(t, func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
	})
	p, l := tunnelProxy(t, Options{HTTPPorts: []int{port}})
	c, br := tunnelTo(t, l, port)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: ok.test\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The client sends nothing more; the broker must end the connection.
	b, err := io.ReadAll(br)
	if err != nil || !strings.HasSuffix(string(b), "hi") {
		t.Fatalf("want the answer and then the end of the connection: %q %v", b, err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p.mu.Lock()
		held := len(p.conns)
		p.mu.Unlock()
		if held <= 3 { // the listeners
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker still holds %d sockets after the server closed", held)
		}
	}
}

// Refusals are cheap to make in bulk: filling the log with them must not
// push out the connections that carried data.
func TestLogKeepsAllowedAfterRefusalFlood(t *testing.T) {
	port, _, _ := rawUpstream(t)
	p, l := tunnelProxy(t, Options{MaxLog: 5})
	for range 10 {
		c, err := net.Dial("tcp", l.HTTP.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "CONNECT denied.test:443 HTTP/1.1\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
		c.Close()
	}
	c, _ := tunnelTo(t, l, port)
	io.WriteString(c, "data")
	c.Close()
	var allowed bool
	for deadline := time.Now().Add(5 * time.Second); !allowed && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, e := range p.Log() {
			allowed = allowed || (e.Allowed && e.Name == "ok.test")
		}
	}
	if !allowed {
		t.Errorf("the allowed connection is not in the log after 10 refusals (MaxLog 5): %+v", p.Log())
	}
	if p.Dropped() != 5 {
		t.Errorf("dropped %d, want 5", p.Dropped())
	}
}
