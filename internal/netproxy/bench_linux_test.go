package netproxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
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

type benchResult struct {
	BulkSeconds      float64
	ConnectMedianUS  float64
	ConcurrentErrors int
	ConcurrentOK     int
	Err              string
}

// sinkServer: "b" reads until EOF and answers the byte count; "e" echoes one
// byte per connection.
func sinkServer(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var op [1]byte
				if _, err := io.ReadFull(c, op[:]); err != nil {
					return
				}
				if op[0] == 'b' {
					n, _ := io.Copy(io.Discard, c)
					fmt.Fprintf(c, "%d\n", n)
					return
				}
				c.Write(op[:])
			}()
		}
	}()
	return ln
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

// bestBulk is the fastest of three transfers (the VM is noisy).
func bestBulk(addr string) (time.Duration, error) {
	var best time.Duration
	for range 3 {
		d, err := bulk(addr, benchBulk)
		if err != nil {
			return 0, err
		}
		if best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

func plainRelay(b *testing.B, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { netproxy.Pump(up, c); up.(*net.TCPConn).CloseWrite() }()
				netproxy.Pump(c, up)
			}()
		}
	}()
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
	var r benchResult
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", "127.0.0.1:53")
	}}
	ips, err := res.LookupNetIP(context.Background(), "ip4", "sink.test")
	if err != nil {
		r.Err = "lookup: " + err.Error()
		return r
	}
	// A synthetic address: every connection goes through the broker.
	addr := net.JoinHostPort(ips[0].String(), os.Getenv("BENCH_PORT"))
	d, err := bestBulk(addr)
	if err != nil {
		r.Err = "bulk: " + err.Error()
		return r
	}
	r.BulkSeconds = d.Seconds()
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

// BenchmarkEgress compares the broker path with a direct loopback
// connection, in the same run. Run with -benchtime=1x; each iteration is a
// full sandbox.
func BenchmarkEgress(b *testing.B) {
	ln := sinkServer(b)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	lo := netip.MustParseAddr("127.0.0.1")
	for b.Loop() {
		opts := netproxy.Options{Resolver: &stubResolver{table: map[string][]netip.Addr{"sink.test": {lo}}}}
		netproxy.PermitForTest(&opts, lo)
		p, err := netproxy.New(netproxy.Policy{Allow: []string{"sink.test"}}, opts)
		if err != nil {
			b.Fatal(err)
		}
		l, sb := netnstest.Start(b, netns.Config{}, "bench", "BENCH_PORT="+strconv.Itoa(port))
		if err := p.Serve(l); err != nil {
			b.Fatal(err)
		}
		var r benchResult
		sb.Wait(b, &r)
		p.Close()
		if r.Err != "" || r.ConcurrentErrors != 0 {
			b.Fatalf("through the broker: %+v", r)
		}
		direct := ln.Addr().String()
		dd, err := bestBulk(direct)
		if err != nil {
			b.Fatal(err)
		}
		dm, err := medianPings(direct, benchConns)
		if err != nil {
			b.Fatal(err)
		}
		// A plain relay on host loopback (no namespace, no NAT, no policy),
		// copying like the broker: what any user-space hop costs here.
		relay := plainRelay(b, direct)
		rd, err := bestBulk(relay)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(benchBulk)/rd.Seconds()/1e6, "plain-relay-MB/s")
		brokerMBs := float64(benchBulk) / r.BulkSeconds / 1e6
		directMBs := float64(benchBulk) / dd.Seconds() / 1e6
		b.ReportMetric(brokerMBs, "broker-MB/s")
		b.ReportMetric(directMBs, "direct-MB/s")
		b.ReportMetric(brokerMBs/directMBs, "throughput-ratio")
		b.ReportMetric(r.ConnectMedianUS, "broker-conn-median-us")
		b.ReportMetric(float64(dm.Microseconds()), "direct-conn-median-us")
		b.ReportMetric(r.ConnectMedianUS-float64(dm.Microseconds()), "added-conn-us")
		b.ReportMetric(float64(r.ConcurrentOK), "concurrent-ok")
	}
}
