package netproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-sandbox/airlock/internal/netns"
)

// Resolver resolves names in the broker; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures a Proxy. Zero values take the defaults.
type Options struct {
	Resolver    Resolver                                                          // default net.DefaultResolver
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error) // default net.Dialer
	DialTimeout time.Duration                                                     // default 10s
	// OnConn, if set, is called once per attempt when it is decided or
	// finished (for -v live printing). It must not block for long.
	OnConn func(Conn)
	// MaxLog caps the connection log (default 10000), refused and allowed
	// attempts each (refusals the sandbox can make cheaply in bulk must not
	// push out the connections that carried data); later attempts are
	// counted in Dropped.
	MaxLog int
	// SNIPorts are the captured ports where the broker reads the TLS
	// ClientHello first and refuses a server name the policy does not allow
	// (default 443). Only client-first protocols belong here.
	SNIPorts []int
	// HTTPPorts are the captured ports that carry plain HTTP (default 80):
	// the broker reads every request before it goes out and refuses a Host
	// the policy does not allow.
	HTTPPorts []int
	// MaxConns caps the connections from this sandbox the broker serves at
	// once (default 2048; each may have one upstream socket too);
	// connections beyond it are reset and logged.
	MaxConns int

	// permit lets tests use loopback servers as "the internet".
	permit func(netip.Addr) bool
}

// Conn is one connection attempt (or refused DNS lookup) seen by the broker.
type Conn struct {
	Time     time.Time
	Proto    string // "tcp" (captured), "http-connect", "http", "dns", "forward", "publish", or a dropped protocol ("udp", "icmp", ...)
	Name     string // host name, when known
	IP       string // address dialled or requested
	Port     int
	Allowed  bool   // the policy allowed it (it may still have failed: see Reason)
	Reason   string // rule that decided, or why it failed
	BytesOut int64  // sandbox -> remote
	BytesIn  int64  // remote -> sandbox
}

// Proxy is the broker's egress proxy for one sandbox.
type Proxy struct {
	m    *matcher
	fake *fakeIPs
	opts Options
	ctx  context.Context
	stop context.CancelFunc

	noIPv6 atomic.Bool // the namespace has no IPv6: answer AAAA empty

	mu      sync.Mutex
	pool    []*os.File // unconnected sockets of the sandbox's namespace (--publish)
	poolCap int
	log     []Conn
	dropped int
	logged  [2]int // entries kept, refused and allowed
	closed  bool
	conns   map[io.Closer]struct{}
	wg      sync.WaitGroup
}

// New compiles the policy; malformed entries are an error.
func New(policy Policy, opts Options) (*Proxy, error) {
	m, err := compile(policy)
	if err != nil {
		return nil, err
	}
	m.permit = opts.permit
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.Dial == nil {
		d := &net.Dialer{}
		opts.Dial = d.DialContext
	}
	if opts.MaxLog == 0 {
		opts.MaxLog = 10000
	}
	if opts.SNIPorts == nil {
		opts.SNIPorts = []int{443}
	}
	if opts.HTTPPorts == nil {
		opts.HTTPPorts = []int{80}
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 2048
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Proxy{m: m, fake: newFakeIPs(), opts: opts, ctx: ctx, stop: stop, conns: map[io.Closer]struct{}{}}, nil
}

// Serve starts serving the sockets from the sandbox's namespace and returns;
// the Proxy owns them from now on. Close stops it. Without the egress set
// (netns.Config.NoEgress) only the forwards and the publish pool are used.
func (p *Proxy) Serve(l *netns.Listeners) error {
	if l == nil || (!l.Egress() && (l.Capture4 != nil || l.DNS4 != nil || l.HTTP != nil)) {
		return errors.New("netproxy: incomplete listener set")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return net.ErrClosed
	}
	for _, ln := range l.Forward {
		p.track(ln)
		p.goAccept(ln, p.handleForward)
	}
	for _, f := range l.Pool {
		p.track(f)
	}
	p.pool = append(p.pool, l.Pool...)
	p.poolCap += len(l.Pool)
	if !l.Egress() {
		return nil
	}
	p.noIPv6.Store(l.Capture6 == nil)
	for _, ln := range []*net.TCPListener{l.Capture4, l.Capture6} {
		if ln != nil {
			p.track(ln)
			p.goAccept(ln, p.handleCaptured)
		}
	}
	p.track(l.HTTP)
	p.goAccept(l.HTTP, p.handleHTTP)
	if l.DropLog != nil {
		p.track(l.DropLog)
		p.wg.Add(1)
		go p.readDropLog(l.DropLog)
	}
	for _, ln := range []*net.TCPListener{l.DNSTCP4, l.DNSTCP6} {
		if ln != nil {
			p.track(ln)
			p.goAccept(ln, p.serveDNSTCP)
		}
	}
	for _, pc := range []*net.UDPConn{l.DNS4, l.DNS6} {
		if pc != nil {
			p.track(pc)
			p.wg.Add(1)
			go p.serveDNS(pc)
		}
	}
	return nil
}

// track registers c to be closed by Close; p.mu must be held.
func (p *Proxy) track(c io.Closer) { p.conns[c] = struct{}{} }

func (p *Proxy) goAccept(ln *net.TCPListener, handle func(*net.TCPConn)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return
				}
				// EMFILE and the like: back off, keep serving.
				time.Sleep(20 * time.Millisecond)
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				return
			}
			if len(p.conns) >= p.opts.MaxConns {
				p.mu.Unlock()
				p.record(Conn{Proto: "tcp", Reason: "too many open connections"})
				reset(c)
				continue
			}
			p.track(c)
			p.wg.Add(1)
			p.mu.Unlock()
			go func() {
				defer p.wg.Done()
				handle(c)
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
				c.Close()
			}()
		}
	}()
}

// Close stops serving, closes every socket and waits for the handlers.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.stop()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Log returns a copy of the connection log so far.
func (p *Proxy) Log() []Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Conn(nil), p.log...)
}

// Dropped is the number of attempts not kept because the log was full.
func (p *Proxy) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

func (p *Proxy) record(c Conn) {
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	// The sandbox chooses much of this text (a CONNECT host, a Host header
	// quoted in a reason): each entry is kept small, or MaxLog entries of
	// a request head each would be gigabytes.
	c.Name, c.Reason = clip(c.Name, maxLogName), clip(c.Reason, maxLogReason)
	p.mu.Lock()
	kind := 0
	if c.Allowed {
		kind = 1
	}
	if p.logged[kind] < p.opts.MaxLog {
		p.logged[kind]++
		p.log = append(p.log, c)
	} else {
		p.dropped++
	}
	p.mu.Unlock()
	if p.opts.OnConn != nil {
		p.opts.OnConn(c)
	}
}

// Caps on a log entry's sandbox-chosen text.
const (
	maxLogName   = 253 // the longest DNS name
	maxLogReason = 512
)

// clip cuts s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func (p *Proxy) serveDNS(pc *net.UDPConn) {
	defer p.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		reply, denied := p.answerDNS(buf[:n])
		if denied != nil {
			p.record(*denied)
		}
		if reply != nil {
			pc.WriteToUDPAddrPort(reply, from)
		}
	}
}

// readDropLog records what the sandbox's rules dropped (UDP other than
// DNS, ICMP, other protocols).
func (p *Proxy) readDropLog(f io.Reader) {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			continue // ENOBUFS: the kernel dropped reports; keep reading
		}
		for _, d := range netns.ParseDropLog(buf[:n]) {
			p.record(Conn{Proto: d.Proto, IP: d.Dst.Addr().String(), Port: int(d.Dst.Port()),
				Reason: "dropped inside the sandbox: only TCP and DNS leave"})
		}
	}
}

// serveDNSTCP answers length-prefixed DNS queries on one TCP connection.
func (p *Proxy) serveDNSTCP(c *net.TCPConn) {
	br := bufio.NewReader(c)
	for {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		q := make([]byte, int(hdr[0])<<8|int(hdr[1]))
		if _, err := io.ReadFull(br, q); err != nil {
			return
		}
		reply, denied := p.answerDNS(q)
		if denied != nil {
			p.record(*denied)
		}
		if reply == nil {
			return
		}
		out := append([]byte{byte(len(reply) >> 8), byte(len(reply))}, reply...)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// reset closes c with RST so the sandboxed client fails at once.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// destination turns what the sandbox asked for into a name or a literal
// address: synthetic addresses map back to the name they were issued for.
func (p *Proxy) destination(host string) (name string, addr netip.Addr, err error) {
	if a, perr := netip.ParseAddr(host); perr == nil {
		if isFake(a) {
			n, ok := p.fake.lookup(a)
			if !ok {
				return "", a, errors.New("unknown synthetic address")
			}
			return n, a, nil
		}
		return "", a.Unmap(), nil
	}
	n, ok := canonicalName(host)
	if !ok {
		return "", netip.Addr{}, errors.New("malformed host name")
	}
	return n, netip.Addr{}, nil
}

// dial applies the policy to (name or addr):port, resolves in the broker,
// filters the results and connects. entry is filled for the log; up is nil
// when refused or failed.
func (p *Proxy) dial(name string, addr netip.Addr, port uint16, entry *Conn) net.Conn {
	entry.Name, entry.Port = name, int(port)
	if addr.IsValid() {
		entry.IP = addr.String()
	}
	var candidates []netip.Addr
	if name != "" {
		entry.Allowed, entry.Reason = p.m.checkName(name, port)
		if !entry.Allowed {
			return nil
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.opts.DialTimeout)
		addrs, err := p.opts.Resolver.LookupNetIP(ctx, "ip", name)
		cancel()
		if err != nil {
			entry.Reason += "; resolve failed: " + err.Error()
			return nil
		}
		refused := ""
		for _, a := range addrs {
			if ok, why := p.m.denyAddr(a.Unmap(), port); ok {
				candidates = append(candidates, a.Unmap())
			} else if refused == "" {
				refused = fmt.Sprintf("%s (%s)", why, a.Unmap())
			}
		}
		if len(candidates) == 0 {
			entry.Allowed = false
			if refused == "" {
				refused = "no addresses"
			}
			entry.Reason = "name resolves only to refused addresses: " + refused
			return nil
		}
	} else {
		entry.Allowed, entry.Reason = p.m.checkAddr(addr, port)
		if !entry.Allowed {
			return nil
		}
		candidates = []netip.Addr{addr}
	}
	var lastErr error
	for _, a := range candidates {
		ctx, cancel := context.WithTimeout(p.ctx, p.opts.DialTimeout)
		up, err := p.opts.Dial(ctx, "tcp", netip.AddrPortFrom(a, port).String())
		cancel()
		if err == nil {
			entry.IP = a.String()
			return up
		}
		lastErr = err
	}
	entry.Reason += "; connect failed: " + lastErr.Error()
	return nil
}

func (p *Proxy) handleCaptured(c *net.TCPConn) {
	entry := Conn{Time: time.Now(), Proto: "tcp"}
	dst, err := netns.OriginalDst(c)
	if err != nil {
		entry.Reason = "no original destination: " + err.Error()
		p.record(entry)
		reset(c)
		return
	}
	name, addr, err := p.destination(dst.Addr().String())
	if err != nil {
		entry.IP, entry.Port, entry.Reason = dst.Addr().String(), int(dst.Port()), err.Error()
		p.record(entry)
		reset(c)
		return
	}
	var prelude []byte
	checkSNI := name != "" && slices.Contains(p.opts.SNIPorts, int(dst.Port()))
	plainHTTP := name != "" && slices.Contains(p.opts.HTTPPorts, int(dst.Port()))
	if checkSNI || plainHTTP {
		if ok, why := p.checkDestination(name, addr, dst.Port()); !ok {
			entry.Name, entry.IP, entry.Port, entry.Reason = name, addr.String(), int(dst.Port()), why
			if !addr.IsValid() {
				entry.IP = ""
			}
			p.record(entry)
			reset(c)
			return
		}
	}
	if plainHTTP {
		p.captureHTTP(c, name, addr, dst, &entry)
		p.record(entry)
		return
	}
	if checkSNI {
		kind, sni, read := peekSNI(c, helloWait)
		prelude = read
		if why := p.frontedName(name, kind, sni, dst.Port()); why != "" {
			entry.Name, entry.Port, entry.Reason = name, int(dst.Port()), why
			p.record(entry)
			reset(c)
			return
		}
	}
	up := p.dial(name, addr, dst.Port(), &entry)
	if up == nil {
		p.record(entry)
		reset(c)
		return
	}
	p.relay(c, up, prelude, &entry)
	p.record(entry)
}

// frontedName refuses, on a TLS port of a connection made for name, a
// TLS server name other than that name unless it is itself allowed: CDN
// fronting to another tenant by SNI. What the broker cannot read as a
// ClientHello is refused too, since a server may read a name in it that
// the check could not: a hello Go's parser rejects (duplicate extensions,
// a trailing dot), one not whole before the deadline, another protocol, or
// silence. It returns why, or "".
func (p *Proxy) frontedName(name string, kind helloKind, sni string, port uint16) string {
	switch {
	case name == "":
		return ""
	case kind == helloOther:
		return "not TLS on a TLS port"
	case kind == helloNone:
		return fmt.Sprintf("no TLS ClientHello within %v", helloWait)
	case kind == helloBad:
		return "TLS ClientHello unreadable or not whole within " + helloWait.String()
	case sni == "" || sni == name:
		return ""
	}
	return p.otherName("TLS server name", sni, port)
}

// otherName is why a name a connection carries for another host than the
// one it was made for is refused, or "" when that name is allowed too.
func (p *Proxy) otherName(what, other string, port uint16) string {
	n, ok := canonicalName(other)
	if allowed, why := p.m.checkName(n, port); !ok || !allowed {
		if !ok {
			why = "is not a host name"
		}
		return what + " " + strconv.Quote(other) + " " + why
	}
	return ""
}

// captureHTTP serves a captured plain-HTTP connection made for name; see
// checkHost and forwardRequests.
func (p *Proxy) captureHTTP(c *net.TCPConn, name string, addr netip.Addr, dst netip.AddrPort, entry *Conn) {
	entry.Name, entry.Port = name, int(dst.Port())
	h := newHeadReader(c)
	req, err := h.next(headTimeout)
	if err != nil {
		entry.Reason = "not an HTTP request on an HTTP port: " + err.Error()
		reset(c)
		return
	}
	if why := p.checkHost(req, name, dst.Addr().String(), dst.Port()); why != "" {
		entry.Reason = why
		reset(c)
		return
	}
	up := p.dial(name, addr, dst.Port(), entry)
	if up == nil {
		reset(c)
		return
	}
	p.forwardRequests(c, h, up, req, name, dst.Addr().String(), dst.Port(), entry)
}

// checkHost refuses a request whose Host is neither the name the
// connection was made for (or the address it was made to) nor itself
// allowed: otherwise an allowed address shared by many sites (a CDN) would
// reach any of them by Host. The Host that goes out is rebuilt from the
// name that was checked (and a numeric port), never the client's
// spelling: a server may read more into that than the check did ("ok:1,
// evil" to a router that splits on commas). A request without Host gets
// the name. It returns why, or "".
func (p *Proxy) checkHost(req *http.Request, name, addr string, port uint16) string {
	if req.ProtoMajor != 1 {
		return "not an HTTP request on an HTTP port: not HTTP/1.x: " + req.Proto
	}
	host, hostPort := req.Host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host, hostPort = host[:i], host[i+1:]
		if n, err := strconv.ParseUint(hostPort, 10, 16); hostPort != "" && (err != nil || n == 0) {
			return "HTTP Host " + strconv.Quote(req.Host) + " has a malformed port"
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	target := name
	if host != "" && host != addr {
		n, ok := canonicalName(host)
		if !ok || n != name {
			if why := p.otherName("HTTP Host", host, port); why != "" {
				return why
			}
		}
		target = n
	}
	if hostPort != "" {
		target += ":" + hostPort
	}
	req.Host = target
	delete(req.Trailer, "Host")
	return ""
}

// forwardRequests carries the requests of a plain-HTTP connection made for
// name to up, each read by the broker and its Host checked before it goes
// out, so keep-alive and pipelining work and a later request cannot name
// another host; the answers flow back unread. A request that is refused
// or does not parse is not sent and is logged on its own; the server then
// sees the end of input, and the connection ends once it has answered
// what came before.
func (p *Proxy) forwardRequests(c *net.TCPConn, h *headReader, up net.Conn, req *http.Request, name, addr string, port uint16, entry *Conn) {
	if !p.hold(up) {
		return
	}
	defer p.release(up)
	// The answers flow back while requests go out: a client that waits
	// for 100 Continue before its body must see it.
	done := make(chan int64, 1)
	var upDone atomic.Bool
	go func() {
		n, _ := pump(c, up)
		c.CloseWrite()
		// The server is done with the connection: no later request can
		// be answered, so stop waiting for one.
		upDone.Store(true)
		c.SetReadDeadline(time.Now())
		done <- n
	}()
	cw := &countWriter{w: up}
	for {
		if _, ok := req.Header["User-Agent"]; !ok {
			req.Header["User-Agent"] = []string{""} // Write adds Go's otherwise
		}
		if err := req.Write(cw); err != nil {
			entry.Reason += "; forward failed: " + err.Error()
			up.Close()
			break
		}
		// No idle deadline from here on: an answer may still be flowing.
		// The wait ends when the server closes.
		next, err := h.next(0)
		if err == io.EOF || upDone.Load() {
			closeWrite(up)
			break
		}
		why := ""
		if err != nil {
			why = "not an HTTP request on an HTTP port: " + err.Error()
		} else {
			why = p.checkHost(next, name, addr, port)
		}
		if why != "" {
			// Not sent; the requests before it are still answered.
			p.record(Conn{Time: time.Now(), Proto: entry.Proto, Name: name, Port: int(port), Reason: "a later request on the connection: " + why})
			closeWrite(up)
			break
		}
		req = next
	}
	entry.BytesOut += cw.n
	entry.BytesIn += <-done
}

// prefixed reads first what was already buffered, then the connection.
type prefixed struct {
	net.Conn
	r io.Reader
}

func (c *prefixed) Read(b []byte) (int, error) { return c.r.Read(b) }

// checkDestination is the policy decision alone, before any I/O.
func (p *Proxy) checkDestination(name string, addr netip.Addr, port uint16) (bool, string) {
	if name != "" {
		return p.m.checkName(name, port)
	}
	return p.m.checkAddr(addr, port)
}

// relay copies both ways until both directions end, counting bytes.
// prelude is client data already read (HTTP CONNECT buffering).
func (p *Proxy) relay(client *net.TCPConn, up net.Conn, prelude []byte, entry *Conn) {
	if !p.hold(up) {
		return
	}
	defer p.release(up)
	if len(prelude) > 0 {
		n, err := up.Write(prelude)
		entry.BytesOut += int64(n)
		if err != nil {
			return
		}
	}
	done := make(chan int64)
	go func() {
		n, _ := pump(up, client)
		closeWrite(up)
		done <- n
	}()
	n, _ := pump(client, up)
	client.CloseWrite()
	entry.BytesIn += n
	entry.BytesOut += <-done
}

// Buffers for bulk transfers: at most bigBufMax are out at once, so many
// busy connections cost at most bigBufMax*bigBufSize of memory.
const (
	smallBufSize = 32 << 10
	bigBufSize   = 1 << 20
	bigBufMax    = 32
)

var (
	bigBufs  = sync.Pool{New: func() any { b := make([]byte, bigBufSize); return &b }}
	bigSlots = make(chan struct{}, bigBufMax)
)

// pump copies src to dst with plain reads and writes. io.Copy between two
// TCP sockets splices through a pipe, which moved half the data per second
// of a buffered copy on a 2-core machine. A connection starts with a small
// buffer and takes a large one once a read fills it (bulk data).
func pump(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, smallBufSize)
	var big *[]byte
	defer func() {
		if big != nil {
			bigBufs.Put(big)
			<-bigSlots
		}
	}()
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			m, werr := dst.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
			if n == len(buf) && big == nil {
				select {
				case bigSlots <- struct{}{}:
					big = bigBufs.Get().(*[]byte)
					buf = *big
				default:
				}
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// hold registers an upstream connection so Close can interrupt it; false
// (and up closed) when the proxy is already closed.
func (p *Proxy) hold(up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		up.Close()
		return false
	}
	p.track(up)
	return true
}

func (p *Proxy) release(up net.Conn) {
	p.mu.Lock()
	delete(p.conns, up)
	p.mu.Unlock()
	up.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}

// maxRequestHead bounds the request line and headers the broker reads
// from the sandbox (http.ReadRequest alone buffers them without limit); a
// connection waiting for one holds at most that much. Servers take less
// (nginx 32 KiB in all by default).
// headTimeout bounds the wait for a connection's first request, which
// comes before the broker connects anywhere.
const (
	maxRequestHead = 64 << 10
	headTimeout    = 30 * time.Second
)

// headReader reads requests from a sandbox connection, each head within
// maxRequestHead bytes; bodies read from br without that bound.
type headReader struct {
	c  *net.TCPConn
	lr io.LimitedReader
	br *bufio.Reader
}

func newHeadReader(c *net.TCPConn) *headReader {
	h := &headReader{c: c, lr: io.LimitedReader{R: c}}
	h.br = bufio.NewReader(&h.lr)
	return h
}

// next reads a request's head, within timeout unless it is 0.
func (h *headReader) next(timeout time.Duration) (*http.Request, error) {
	h.lr.N = maxRequestHead
	if timeout > 0 {
		h.c.SetReadDeadline(time.Now().Add(timeout))
	}
	req, err := http.ReadRequest(h.br)
	if err != nil {
		if h.lr.N <= 0 {
			err = fmt.Errorf("request line and headers over %d KiB", maxRequestHead>>10)
		}
		return nil, err
	}
	h.c.SetReadDeadline(time.Time{})
	h.lr.N = math.MaxInt64
	return req, nil
}

// handleHTTP serves one request of a proxy-aware client: CONNECT host:port,
// or a plain http:// request forwarded with Connection: close.
func (p *Proxy) handleHTTP(c *net.TCPConn) {
	h := newHeadReader(c)
	req, err := h.next(headTimeout)
	if err != nil {
		return
	}
	br := h.br
	entry := Conn{Time: time.Now(), Proto: "http"}
	var host, portStr string
	if req.Method == http.MethodConnect {
		entry.Proto = "http-connect"
		host, portStr, err = net.SplitHostPort(req.Host)
		if err != nil {
			host, portStr, err = req.Host, "443", nil
		}
	} else {
		if req.URL.Scheme != "http" || req.URL.Host == "" {
			httpError(c, 400, "airlock proxy: want CONNECT or an absolute http:// URL")
			return
		}
		host, portStr = req.URL.Hostname(), req.URL.Port()
		if portStr == "" {
			portStr = "80"
		}
	}
	port, perr := strconv.ParseUint(portStr, 10, 16)
	name, addr, derr := p.destination(host)
	if perr != nil || port == 0 || derr != nil {
		entry.Name, entry.Reason = host, "malformed destination"
		p.record(entry)
		httpError(c, 400, "airlock proxy: malformed destination "+strconv.Quote(req.Host))
		return
	}
	up := p.dial(name, addr, uint16(port), &entry)
	if up == nil {
		p.record(entry)
		code := 403
		if entry.Allowed {
			code = 502
		}
		httpError(c, code, "airlock: "+entry.Reason)
		return
	}
	if req.Method == http.MethodConnect {
		if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			up.Close()
			p.record(entry)
			return
		}
		// A tunnel to a name on an HTTP port carries checked requests only,
		// like a captured connection.
		if name != "" && slices.Contains(p.opts.HTTPPorts, int(port)) {
			treq, err := h.next(headTimeout)
			why := ""
			if err != nil {
				why = "not an HTTP request on an HTTP port: " + err.Error()
			} else {
				why = p.checkHost(treq, name, host, uint16(port))
			}
			if why != "" {
				entry.Allowed, entry.Reason = false, why
				up.Close()
				p.record(entry)
				reset(c)
				return
			}
			p.forwardRequests(c, h, up, treq, name, host, uint16(port), &entry)
			p.record(entry)
			return
		}
		var prelude []byte
		if n := br.Buffered(); n > 0 {
			prelude, _ = br.Peek(n)
		}
		// A tunnel to a name gets the same TLS server name check as a
		// captured connection; the upstream has seen no byte yet.
		if name != "" && slices.Contains(p.opts.SNIPorts, int(port)) {
			in := &prefixed{Conn: c, r: io.MultiReader(bytes.NewReader(prelude), c)}
			kind, sni, read := peekSNI(in, helloWait)
			prelude = read
			if why := p.frontedName(name, kind, sni, uint16(port)); why != "" {
				entry.Allowed, entry.Reason = false, why
				up.Close()
				p.record(entry)
				reset(c)
				return
			}
		}
		p.relay(c, up, prelude, &entry)
		p.record(entry)
		return
	}
	if !p.hold(up) {
		return
	}
	defer p.release(up)
	req.Header.Del("Proxy-Connection")
	req.Header.Del("Proxy-Authorization")
	req.Close = true
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // Write adds Go's otherwise
	}
	cw := &countWriter{w: up}
	if err := req.Write(cw); err != nil {
		entry.BytesOut = cw.n
		entry.Reason += "; forward failed: " + err.Error()
		p.record(entry)
		return
	}
	n, _ := io.Copy(c, up)
	entry.BytesOut, entry.BytesIn = cw.n, n
	p.record(entry)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func httpError(c net.Conn, code int, msg string) {
	msg += "\n"
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(msg), msg)
}

// ServeHTTPProxy serves only the HTTP proxy on ln: for backends that can
// confine a program to one local port but cannot capture its connections
// (macOS), so only proxy-aware programs reach allowed hosts.
func (p *Proxy) ServeHTTPProxy(ln *net.TCPListener) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return net.ErrClosed
	}
	p.track(ln)
	p.goAccept(ln, p.handleHTTP)
	return nil
}

// ProxyEnv returns the proxy variables the launcher sets for the target, for
// the default HTTP proxy port.
func ProxyEnv() []string { return ProxyEnvFor(netns.DefaultHTTPPort) }

// ProxyEnvFor returns the proxy variables for an HTTP proxy on
// 127.0.0.1:port.
func ProxyEnvFor(port int) []string {
	u := "http://127.0.0.1:" + strconv.Itoa(port)
	noProxy := "localhost,127.0.0.1,::1"
	return []string{
		"HTTP_PROXY=" + u, "HTTPS_PROXY=" + u, "ALL_PROXY=" + u,
		"http_proxy=" + u, "https_proxy=" + u, "all_proxy=" + u,
		"NO_PROXY=" + noProxy, "no_proxy=" + noProxy,
	}
}
