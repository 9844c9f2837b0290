package netproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock/internal/netns"
	"github.com/airlock-sandbox/airlock/internal/netns/netnstest"
	"github.com/airlock-sandbox/airlock/internal/netproxy"
)

func init() { netnstest.Register("bench", benchScenario) }

const (
	benchBulk       = 256 << 20 // bytes per bulk transfer
	benchConns      = 200       // sequential connections for latency
	benchConcurrent = 200
)

// benchPeerRole, in a re-executed test binary's environment, makes it a
// peer of BenchmarkEgress: "sink" serves the sink and prints its address;
// "client" measures BENCH_ADDR and prints the result as JSON. Client and
// sink are processes of their own, as a sandboxed program and a remote
// server are: the broker path never shares a Go runtime with either, so the
// direct path must not either.
const benchPeerRole = "AIRLOCK_BENCH_ROLE"

// sinkReadSize: the sink stands for a remote host, so it should take as
// little of this machine's CPU as it can; with 8 KiB reads it costs more
// than the relay under test and its ACKs wake the sender every 8 KiB.
const sinkReadSize = 1 << 20

type benchResult struct {
	BulkSeconds      float64
	ConnectMedianUS  float64
	ConcurrentErrors int
	ConcurrentOK     int
	Err              string
}

// serveSink: "b" reads until EOF and answers the byte count; "e" echoes
// one byte per connection.
func serveSink(ln net.Listener) {
	serveEach(ln, func(c net.Conn) {
		var op [1]byte
		if _, err := io.ReadFull(c, op[:]); err != nil {
			return
		}
		if op[0] != 'b' {
			c.Write(op[:])
			return
		}
		buf := make([]byte, sinkReadSize)
		var n int64
		for {
			m, err := c.Read(buf)
			n += int64(m)
			if err != nil {
				break
			}
		}
		fmt.Fprintf(c, "%d\n", n)
	})
}

// serveEach accepts until ln is closed and serves each connection in a
// goroutine of its own, closing it after.
func serveEach(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			serve(c)
		}()
	}
}

// benchPeer runs this process as a BenchmarkEgress peer when it was
// re-executed as one; it does not return then.
func benchPeer() {
	switch os.Getenv(benchPeerRole) {
	case "sink":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr())
		go serveSink(ln)
		io.Copy(io.Discard, os.Stdin) // until the benchmark ends
		os.Exit(0)
	case "client":
		json.NewEncoder(os.Stdout).Encode(measure(os.Getenv("BENCH_ADDR"), os.Getenv("BENCH_FULL") != ""))
		os.Exit(0)
	}
}

// startPeer starts a peer process; the returned line is its first output.
func startPeer(b *testing.B, role string, env ...string) (*exec.Cmd, *bufio.Reader) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchPeerRole+"="+role)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if role == "sink" {
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { in.Close(); cmd.Wait() })
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, bufio.NewReader(out)
}

// measureFromPeer runs measure(addr, full) in a client process of its own.
func measureFromPeer(b *testing.B, addr string, full bool) benchResult {
	cmd, out := startPeer(b, "client", "BENCH_ADDR="+addr, benchFullEnv(full))
	var r benchResult
	if err := json.NewDecoder(out).Decode(&r); err != nil {
		b.Fatalf("bench client: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("bench client: %v", err)
	}
	if r.Err != "" || r.ConcurrentErrors != 0 {
		b.Fatalf("bench client to %s: %+v", addr, r)
	}
	return r
}

// bulk sends n bytes to addr and waits for the count: one direction at full
// speed through whatever is in between.
func bulk(addr string, n int64) (time.Duration, error) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.Write([]byte{'b'})
	if _, err := io.CopyN(c, zeros{}, n); err != nil {
		return 0, err
	}
	c.(*net.TCPConn).CloseWrite()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if got, _ := strconv.ParseInt(line[:len(line)-1], 10, 64); got != n {
		return 0, fmt.Errorf("server got %d bytes, want %d", got, n)
	}
	return time.Since(start), nil
}

func benchFullEnv(full bool) string {
	if full {
		return "BENCH_FULL=1"
	}
	return "BENCH_FULL="
}

func plainRelay(b *testing.B, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go serveEach(ln, func(c net.Conn) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { netproxy.Pump(up, c); up.(*net.TCPConn).CloseWrite() }()
		netproxy.Pump(c, up)
	})
	return ln.Addr().String()
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// ping opens a connection and round-trips one byte.
func ping(addr string) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{'e'}); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func medianPings(addr string, n int) (time.Duration, error) {
	var d []time.Duration
	for range n {
		x, err := ping(addr)
		if err != nil {
			return 0, err
		}
		d = append(d, x)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], nil
}

func benchScenario() any {
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", "127.0.0.1:53")
	}}
	ips, err := res.LookupNetIP(context.Background(), "ip4", "sink.test")
	if err != nil {
		return benchResult{Err: "lookup: " + err.Error()}
	}
	// A synthetic address: every connection goes through the broker.
	return measure(net.JoinHostPort(ips[0].String(), os.Getenv("BENCH_PORT")), os.Getenv("BENCH_FULL") != "")
}

// measure is the client side of BenchmarkEgress, the same in the sandbox
// and outside it: one bulk transfer and, when full, the connection
// latency and the concurrent connections.
func measure(addr string, full bool) benchResult {
	var r benchResult
	d, err := bulk(addr, benchBulk)
	if err != nil {
		r.Err = "bulk: " + err.Error()
		return r
	}
	r.BulkSeconds = d.Seconds()
	if !full {
		return r
	}
	m, err := medianPings(addr, benchConns)
	if err != nil {
		r.Err = "ping: " + err.Error()
		return r
	}
	r.ConnectMedianUS = float64(m.Microseconds())
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range benchConcurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ping(addr)
			mu.Lock()
			if err != nil {
				r.ConcurrentErrors++
			} else {
				r.ConcurrentOK++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return r
}

// benchRounds: each round makes one transfer on each path, in a rotating
// order, and each path counts its fastest, so that no path gains from the
// machine's mood (this VM is noisy).
const benchRounds = 5

// BenchmarkEgress compares the broker path with a direct loopback
// connection, in the same run: the same client code in a process of its
// own, to the same sink process. Run with -benchtime=1x.
func BenchmarkEgress(b *testing.B) {
	_, out := startPeer(b, "sink")
	direct, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("bench sink: %v", err)
	}
	direct = strings.TrimSpace(direct)
	_, port, _ := net.SplitHostPort(direct)
	// A plain relay on host loopback (no namespace, no NAT, no policy),
	// copying like the broker: what any user-space hop costs here.
	relay := plainRelay(b, direct)
	for b.Loop() {
		var d, r, pr benchResult
		for round := range benchRounds {
			full := round == benchRounds-1
			paths := []func(){
				func() { d = faster(d, measureFromPeer(b, direct, full)) },
				func() { r = faster(r, throughBroker(b, port, full)) },
				func() { pr = faster(pr, measureFromPeer(b, relay, false)) },
			}
			for i := range paths {
				paths[(round+i)%len(paths)]()
			}
		}
		b.ReportMetric(float64(benchBulk)/pr.BulkSeconds/1e6, "plain-relay-MB/s")
		brokerMBs := float64(benchBulk) / r.BulkSeconds / 1e6
		directMBs := float64(benchBulk) / d.BulkSeconds / 1e6
		b.ReportMetric(brokerMBs, "broker-MB/s")
		b.ReportMetric(directMBs, "direct-MB/s")
		b.ReportMetric(brokerMBs/directMBs, "throughput-ratio")
		b.ReportMetric(r.ConnectMedianUS, "broker-conn-median-us")
		b.ReportMetric(d.ConnectMedianUS, "direct-conn-median-us")
		b.ReportMetric(r.ConnectMedianUS-d.ConnectMedianUS, "added-conn-us")
		b.ReportMetric(float64(r.ConcurrentOK), "concurrent-ok")
	}
}

// faster keeps the faster transfer of two results and the latency figures
// of whichever has them.
func faster(best, next benchResult) benchResult {
	if best.BulkSeconds != 0 && best.BulkSeconds < next.BulkSeconds {
		next.BulkSeconds = best.BulkSeconds
	}
	if next.ConnectMedianUS == 0 {
		next.ConnectMedianUS, next.ConcurrentOK = best.ConnectMedianUS, best.ConcurrentOK
	}
	return next
}

// throughBroker runs measure in a sandbox whose only allowed name is the
// sink, so every connection goes through the broker.
func throughBroker(b *testing.B, port string, full bool) benchResult {
	lo := netip.MustParseAddr("127.0.0.1")
	opts := netproxy.Options{Resolver: &stubResolver{table: map[string][]netip.Addr{"sink.test": {lo}}}}
	netproxy.PermitForTest(&opts, lo)
	p, err := netproxy.New(netproxy.Policy{Allow: []string{"sink.test"}}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	l, sb := netnstest.Start(b, netns.Config{}, "bench", "BENCH_PORT="+port, benchFullEnv(full))
	if err := p.Serve(l); err != nil {
		b.Fatal(err)
	}
	var r benchResult
	sb.Wait(b, &r)
	if r.Err != "" || r.ConcurrentErrors != 0 {
		b.Fatalf("through the broker: %+v", r)
	}
	return r
}
