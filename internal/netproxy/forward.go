package netproxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// handleForward carries a connection the sandbox made to a forwarded
// listener to the same address on the host (--net-forward).
func (p *Proxy) handleForward(c *net.TCPConn) {
	to := c.LocalAddr().(*net.TCPAddr).AddrPort()
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	entry := Conn{Time: time.Now(), Proto: "forward", IP: to.Addr().String(), Port: int(to.Port()), Allowed: true, Reason: "forward"}
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.DialTimeout)
	up, err := p.opts.Dial(ctx, "tcp", to.String())
	cancel()
	if err != nil {
		entry.Reason += "; connect failed: " + err.Error()
		p.record(entry)
		reset(c)
		return
	}
	p.relay(c, up, nil, &entry)
	p.record(entry)
}

// Publish serves ln on the host: each connection is carried to to
// (127.0.0.1:port) inside the sandbox through one socket of the pool the
// helper made there (--publish). The Proxy owns ln from now on. Call it
// after Serve.
func (p *Proxy) Publish(ln *net.TCPListener, to netip.AddrPort) error {
	if !to.Addr().Is4() {
		return fmt.Errorf("netproxy: publish to %s: only IPv4 sandbox addresses", to)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return net.ErrClosed
	}
	p.track(ln)
	p.goAccept(ln, func(c *net.TCPConn) { p.handlePublish(c, to) })
	return nil
}

func (p *Proxy) handlePublish(c *net.TCPConn, to netip.AddrPort) {
	entry := Conn{Time: time.Now(), Proto: "publish", IP: to.Addr().String(), Port: int(to.Port()), Allowed: true, Reason: "publish"}
	f := p.takeSocket()
	if f == nil {
		entry.Allowed = false
		entry.Reason = fmt.Sprintf("publish: all %d sockets of the sandbox's pool are in use", p.poolCap)
		p.record(entry)
		reset(c)
		return
	}
	in, err := connectIn(f, to, p.opts.DialTimeout)
	if err != nil {
		// A refused connect leaves the socket reusable once disconnected.
		p.putSocket(f, disconnect(f) == nil)
		entry.Reason += "; connect failed: " + err.Error()
		reset(c)
		p.record(entry)
		return
	}
	if !p.hold(in) {
		p.putSocket(f, false)
		return
	}
	// Sandbox side as the client: BytesOut counts sandbox -> host.
	p.relay(in, c, nil, &entry)
	p.release(in)
	p.putSocket(f, disconnect(f) == nil)
	p.record(entry)
}

// takeSocket takes a socket from the pool, or nil when none is left.
func (p *Proxy) takeSocket() *os.File {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.pool) == 0 {
		return nil
	}
	f := p.pool[len(p.pool)-1]
	p.pool = p.pool[:len(p.pool)-1]
	return f
}

// putSocket returns f to the pool when it can be connected again;
// otherwise closes it, shrinking the pool.
func (p *Proxy) putSocket(f *os.File, reuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reuse && !p.closed {
		p.pool = append(p.pool, f)
		return
	}
	delete(p.conns, f)
	f.Close()
}
