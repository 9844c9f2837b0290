package airlock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock/internal/linux"
	"github.com/airlock-sandbox/airlock/internal/netns"
	"github.com/airlock-sandbox/airlock/internal/netproxy"
)

// egress is the broker side of the network policy beyond "none": for
// --net allow= a helper sets up capture inside the sandbox's network
// namespace and hands its sockets to the proxy here; --net-forward and
// --publish use sockets from the same helper.
type egress struct {
	allow   bool // --net allow=: capture, DNS stub and HTTP proxy
	policy  netproxy.Policy
	forward []netip.AddrPort
	publish []published
	proxy   *netproxy.Proxy
	live    func(Connection)
}

type published struct {
	ln *net.TCPListener // on the host, open from newEgress on
	to netip.AddrPort   // 127.0.0.1:port inside the sandbox
}

// newEgress checks the network policy and opens the --publish listeners on
// the host. It returns nil, nil when the policy needs no broker (--net none
// or host without forwards or publishes).
func newEgress(n Network, live func(Connection)) (*egress, error) {
	if !needsEgress(n) {
		return nil, nil
	}
	fail := func(err error) (*egress, error) { return nil, &SetupError{Stage: "network", Err: err} }
	if n.Mode == NetHost {
		return fail(errors.New("--net-forward and --publish need the sandbox's own network (not --net host)"))
	}
	e := &egress{allow: n.Mode == NetAllow, live: live}
	if e.allow {
		e.policy = netproxy.Policy{Allow: n.Allow, Deny: n.Deny, AllowPrivate: n.AllowPrivate}
		if err := e.policy.Validate(); err != nil {
			return fail(err)
		}
	}
	if len(n.Forward) > netns.MaxForwards {
		return fail(fmt.Errorf("--net-forward: %d given, at most %d", len(n.Forward), netns.MaxForwards))
	}
	for _, s := range n.Forward {
		a, err := netns.ParseForward(s)
		if err != nil {
			return fail(err)
		}
		if slices.Contains(e.forward, a) {
			return fail(fmt.Errorf("--net-forward %s: given twice", s))
		}
		if e.allow && (a.Port() == 53 || a.Port() == netns.DefaultCapturePort || a.Port() == netns.DefaultHTTPPort) {
			return fail(fmt.Errorf("--net-forward %s: port %d is used by --net allow= inside the sandbox", s, a.Port()))
		}
		e.forward = append(e.forward, a)
	}
	var sbPorts []uint16
	for _, s := range n.Publish {
		pub, err := netns.ParsePublish(s)
		if err == nil && slices.Contains(sbPorts, pub.Sandbox) {
			err = fmt.Errorf("--publish %s: sandbox port %d published twice", s, pub.Sandbox)
		}
		if err == nil && slices.ContainsFunc(e.forward, func(a netip.AddrPort) bool { return a.Port() == pub.Sandbox }) {
			err = fmt.Errorf("--publish %s: sandbox port %d is a --net-forward port", s, pub.Sandbox)
		}
		var ln *net.TCPListener
		if err == nil {
			ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(pub.Host))
			if err != nil {
				err = fmt.Errorf("--publish %s: %w", s, err)
			}
		}
		if err != nil {
			e.close()
			return fail(err)
		}
		sbPorts = append(sbPorts, pub.Sandbox)
		e.publish = append(e.publish, published{ln: ln, to: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), pub.Sandbox)})
	}
	return e, nil
}

// needsEgress: the broker serves the sandbox's network for --net allow=,
// --net-forward and --publish.
func needsEgress(n Network) bool {
	return n.Mode == NetAllow || len(n.Forward) > 0 || len(n.Publish) > 0
}

// netPorts are the TCP ports the target needs with Landlock's TCP rules
// (--net none): connect to the forwarded ports, bind the published ones.
// Malformed values are skipped (newEgress reports them).
func netPorts(n Network) (connect, bind []uint16) {
	for _, s := range n.Forward {
		if a, err := netns.ParseForward(s); err == nil {
			connect = append(connect, a.Port())
		}
	}
	for _, s := range n.Publish {
		if p, err := netns.ParsePublish(s); err == nil {
			bind = append(bind, p.Sandbox)
		}
	}
	return connect, bind
}

// setup runs in the broker while the sandbox child waits.
func (e *egress) setup(pid int) error {
	exe, err := os.Executable()
	if err != nil {
		return &SetupError{Stage: "network helper", Err: err}
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &SetupError{Stage: "network helper", Err: err}
	}
	broker := os.NewFile(uintptr(sp[0]), "netns-broker")
	defer broker.Close()
	cfg := netns.Config{NoEgress: !e.allow, Forward: e.forward}
	if len(e.publish) > 0 {
		cfg.Pool = netns.DefaultPool
	}
	argv := append([]string{exe}, netns.HelperArgs(cfg)...)
	err = linux.ExecInNamespaces(pid, exe, argv, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, sp[1])
	unix.Close(sp[1])
	if err != nil {
		return &SetupError{Stage: "network helper", Err: err}
	}
	l, err := netns.ReceiveListeners(broker)
	if err == nil && e.allow != l.Egress() {
		l.Close()
		err = errors.New("netns: helper sent the wrong socket set")
	}
	if err != nil {
		return &SetupError{Stage: "network capture", Err: err}
	}
	opts := netproxy.Options{}
	if e.live != nil {
		opts.OnConn = func(c netproxy.Conn) { e.live(connection(c)) }
	}
	if e.proxy, err = netproxy.New(e.policy, opts); err != nil {
		l.Close()
		return &SetupError{Stage: "network proxy", Err: err}
	}
	if err := e.proxy.Serve(l); err != nil {
		e.proxy.Close()
		return &SetupError{Stage: "network proxy", Err: err}
	}
	for i, p := range e.publish {
		if err := e.proxy.Publish(p.ln, p.to); err != nil {
			return &SetupError{Stage: "network publish", Err: err}
		}
		e.publish[i].ln = nil // the proxy owns it
	}
	return nil
}

func (e *egress) close() []Connection {
	for _, p := range e.publish {
		if p.ln != nil {
			p.ln.Close()
		}
	}
	if e.proxy == nil {
		return nil
	}
	e.proxy.Close()
	var out []Connection
	for _, c := range e.proxy.Log() {
		out = append(out, connection(c))
	}
	return out
}

func connection(c netproxy.Conn) Connection {
	reason := c.Reason
	if c.Proto != "" && c.Proto != "tcp" && c.Proto != "forward" && c.Proto != "publish" {
		reason = c.Proto + ": " + reason
	}
	return Connection{Host: c.Name, IP: c.IP, Port: c.Port, Allowed: c.Allowed, Reason: reason, BytesOut: c.BytesOut, BytesIn: c.BytesIn}
}
