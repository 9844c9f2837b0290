package netproxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock/internal/netns"
	"github.com/airlock-sandbox/airlock/internal/netns/netnstest"
	"github.com/airlock-sandbox/airlock/internal/netproxy"
)

func init() { netnstest.Register("curl", curlScenario) }

type curlRun struct {
	Exit int
	Out  string
}

// curlScenario runs the real curl inside the sandbox with no proxy
// variables: it resolves through the host's resolv.conf (UDP 53 to any
// server reaches the stub) and connects directly.
func curlScenario() any {
	run := func(args ...string) curlRun {
		cmd := exec.Command(os.Getenv("CURL"), append([]string{"-sS", "--max-time", "5"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		r := curlRun{Out: string(out)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.Exit = ee.ExitCode()
		} else if err != nil {
			r.Exit, r.Out = -1, err.Error()
		}
		return r
	}
	// Go TLS client: a server name other than the resolved one.
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", "127.0.0.1:53")
	}}
	fake := "?"
	if a, err := res.LookupNetIP(context.Background(), "ip4", "example.com"); err == nil {
		fake = a[0].String()
	}
	tlsDial := func(serverName string) curlRun {
		pem, _ := os.ReadFile(os.Getenv("CA_FILE"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(fake, os.Getenv("TLS_PORT")),
			&tls.Config{ServerName: serverName, RootCAs: pool, InsecureSkipVerify: serverName != "example.com"})
		if err != nil {
			return curlRun{Exit: 1, Out: err.Error()}
		}
		c.Close()
		return curlRun{}
	}
	goSNIOK, goSNIEvil := tlsDial("example.com"), tlsDial("evil.test")
	// Raw HTTP to web.test's address: what the server answers.
	web := "?"
	if a, err := res.LookupNetIP(context.Background(), "ip4", "web.test"); err == nil {
		web = net.JoinHostPort(a[0].String(), os.Getenv("WEB_PORT"))
	}
	rawHTTP := func(send string) curlRun {
		c, err := net.DialTimeout("tcp", web, 5*time.Second)
		if err != nil {
			return curlRun{Exit: 1, Out: err.Error()}
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(send))
		b, err := io.ReadAll(c)
		if err != nil {
			return curlRun{Exit: 1, Out: string(b) + " / " + err.Error()}
		}
		return curlRun{Out: string(b)}
	}
	return map[string]curlRun{
		"goSNIOK":   goSNIOK,
		"goSNIEvil": goSNIEvil,
		// Fronting by Host through an allowed address, and by a second
		// request on a connection whose first request was allowed.
		"hostEvil":  run("-H", "Host: evil.test", "http://web.test:"+os.Getenv("WEB_PORT")+"/evil"),
		"hostOther": run("-H", "Host: example.com", "http://web.test:"+os.Getenv("WEB_PORT")+"/other"),
		"keepAlive": rawHTTP("GET /one HTTP/1.1\r\nHost: web.test\r\n\r\nGET /two HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"),
		"keepEvil":  rawHTTP("GET /three HTTP/1.1\r\nHost: web.test\r\n\r\nGET /four HTTP/1.1\r\nHost: evil.test\r\n\r\n"),
		"notHTTP":   rawHTTP("HELLO evil.test\r\n\r\n"),
		"http10":    rawHTTP("GET /ten HTTP/1.0\r\n\r\n"),
		// 3 MB: curl asks for 100 Continue before the body.
		"post":     run("--data-binary", "@"+os.Getenv("BODY_FILE"), "http://web.test:"+os.Getenv("WEB_PORT")+"/post"),
		"http":     run("http://web.test:" + os.Getenv("WEB_PORT") + "/curl"),
		"https":    run("--cacert", os.Getenv("CA_FILE"), "https://example.com:"+os.Getenv("TLS_PORT")+"/tls"),
		"denied":   run("http://denied.test:" + os.Getenv("WEB_PORT") + "/"),
		"metadata": run("http://169.254.169.254/latest/meta-data/"),
		"literal":  run("http://127.0.0.1:" + os.Getenv("WEB_PORT") + "/"),
	}
}

func TestLiveCurlIgnoringProxyVariables(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("host feature missing: curl")
	}
	var hits, webConns atomic.Int32
	var hosts sync.Map
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		hosts.Store(r.Host, true)
		hosts.Store(r.Host+r.URL.Path, true)
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%s %d %s", r.URL.Path, n, r.Header.Get("Expect"))
			return
		}
		fmt.Fprintf(w, "%s %s", r.URL.Path, r.Host)
	})
	web := httptest.NewUnstartedServer(h)
	web.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			webConns.Add(1)
		}
	}
	web.Start()
	defer web.Close()
	var snis sync.Map
	tlsSrv := httptest.NewUnstartedServer(h)
	tlsSrv.TLS = &tls.Config{GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		snis.Store(hi.ServerName, true)
		return nil, nil
	}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	opts := netproxy.Options{Resolver: &stubResolver{table: map[string][]netip.Addr{
		"web.test": {lo}, "example.com": {lo}, "denied.test": {lo},
	}}}
	netproxy.PermitForTest(&opts, lo)
	webPort := fmt.Sprint(web.Listener.Addr().(*net.TCPAddr).Port)
	tlsPort := fmt.Sprint(tlsSrv.Listener.Addr().(*net.TCPAddr).Port)
	opts.SNIPorts = []int{tlsSrv.Listener.Addr().(*net.TCPAddr).Port}
	opts.HTTPPorts = []int{web.Listener.Addr().(*net.TCPAddr).Port}
	p, err := netproxy.New(netproxy.Policy{Allow: []string{"web.test", "example.com"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	body := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(body, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(body), 0o755)
	l, sb := netnstest.Start(t, netns.Config{}, "curl", "CURL="+curl, "BODY_FILE="+body, "WEB_PORT="+webPort, "TLS_PORT="+tlsPort, "CA_FILE="+ca)
	defer sb.Kill()
	if err := p.Serve(l); err != nil {
		t.Fatal(err)
	}
	var r map[string]curlRun
	sb.Wait(t, &r)
	p.Close()
	t.Logf("curl inside the sandbox: %+v", r)
	if got := r["http"]; got.Exit != 0 || got.Out != "/curl web.test:"+webPort {
		t.Errorf("curl http: %+v", got)
	}
	if got := r["https"]; got.Exit != 0 || got.Out != "/tls example.com:"+tlsPort {
		t.Errorf("curl https (TLS passed through, certificate verified): %+v", got)
	}
	for _, k := range []string{"denied", "metadata", "literal"} {
		if got := r[k]; got.Exit == 0 {
			t.Errorf("curl %s succeeded: %+v", k, got)
		}
	}
	if got := r["goSNIOK"]; got.Exit != 0 {
		t.Errorf("TLS with the resolved name as SNI: %+v", got)
	}
	if got := r["goSNIEvil"]; got.Exit == 0 {
		t.Errorf("TLS with another server name through an allowed address succeeded")
	}
	if _, seen := snis.Load("evil.test"); seen {
		t.Errorf("the TLS server saw a handshake for evil.test")
	}
	if _, seen := snis.Load("example.com"); !seen {
		t.Errorf("oracle broken: the TLS server saw no handshake for example.com")
	}
	// The HTTP Host check: the broker reads the request before it connects.
	if got := r["hostEvil"]; got.Exit == 0 {
		t.Errorf("a request with Host evil.test through web.test's address succeeded: %+v", got)
	}
	if got := r["hostOther"]; got.Exit != 0 || got.Out != "/other example.com" {
		t.Errorf("a request with Host example.com (allowed too) through web.test's address: %+v", got)
	}
	if got := r["keepAlive"]; !strings.Contains(got.Out, "/one web.test") || !strings.Contains(got.Out, "/two example.com") {
		t.Errorf("two allowed requests on one connection: want both answered: %+v", got)
	}
	if got := r["keepEvil"]; !strings.Contains(got.Out, "/three web.test") || strings.Contains(got.Out, "/four") {
		t.Errorf("requests for web.test then evil.test on a kept connection: want the first answered only: %+v", got)
	}
	if _, seen := hosts.Load("web.test/three"); !seen {
		t.Errorf("oracle broken: the first request on the kept connection never reached the server")
	}
	if got := r["notHTTP"]; got.Exit == 0 || strings.Contains(got.Out, "HTTP/") {
		t.Errorf("non-HTTP on the HTTP port got an answer: %+v", got)
	}
	if got := r["http10"]; !strings.HasSuffix(got.Out, "/ten web.test") {
		t.Errorf("HTTP/1.0 without Host: want it sent with the connection's name: %+v", got)
	}
	if got := r["post"]; got.Exit != 0 || got.Out != "/post 3145728 100-continue" {
		t.Errorf("3 MB POST with Expect: 100-continue: %+v", got)
	}
	var posted int64
	for _, c := range p.Log() {
		if c.Allowed && c.Name == "web.test" && c.BytesOut > posted {
			posted = c.BytesOut
		}
	}
	if posted < 3<<20 {
		t.Errorf("the log counts at most %d bytes out for web.test, want the 3 MB body", posted)
	}
	if _, seen := hosts.Load("evil.test"); seen {
		t.Errorf("the web server got a request for Host evil.test")
	}
	if n := webConns.Load(); n != 6 {
		t.Errorf("the web server accepted %d connections, want 6 (http, hostOther, keepAlive, keepEvil, http10, post)", n)
	}
	if n := hits.Load(); n != 8 {
		t.Errorf("servers got %d requests, want 8 (http, https, hostOther, keepAlive's two, keepEvil's first, http10, post)", n)
	}
	refusedHost := false
	for _, c := range p.Log() {
		refusedHost = refusedHost || (!c.Allowed && c.Name == "web.test" && strings.Contains(c.Reason, `HTTP Host "evil.test"`))
	}
	if !refusedHost {
		t.Errorf("the fronted request is not logged as refused: %+v", p.Log())
	}
	for _, c := range p.Log() {
		if c.Allowed && c.Name != "web.test" && c.Name != "example.com" {
			t.Errorf("unexpected allowed attempt %+v", c)
		}
	}
}
