package airlock

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock/internal/linux"
	"github.com/airlock-sandbox/airlock/internal/netns"
	"github.com/airlock-sandbox/airlock/internal/netproxy"
)

// egress is the broker side of --net allow=: a helper sets up capture inside
// the sandbox's network namespace and hands its sockets to the proxy here.
type egress struct {
	policy netproxy.Policy
	proxy  *netproxy.Proxy
	live   func(Connection)
}

func newEgress(n Network, live func(Connection)) (*egress, error) {
	if len(n.Forward) > 0 || len(n.Publish) > 0 {
		return nil, &SetupError{Stage: "network", Err: fmt.Errorf("--net-forward and --publish: %w", ErrUnsupported)}
	}
	pol := netproxy.Policy{Allow: n.Allow, Deny: n.Deny, AllowPrivate: n.AllowPrivate}
	if err := pol.Validate(); err != nil {
		return nil, &SetupError{Stage: "network", Err: err}
	}
	return &egress{policy: pol, live: live}, nil
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
	argv := append([]string{exe}, netns.HelperArgs(netns.Config{})...)
	err = linux.ExecInNamespaces(pid, exe, argv, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, sp[1])
	unix.Close(sp[1])
	if err != nil {
		return &SetupError{Stage: "network helper", Err: err}
	}
	l, err := netns.ReceiveListeners(broker)
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
	return nil
}

func (e *egress) close() []Connection {
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
	if c.Proto != "" && c.Proto != "tcp" {
		reason = c.Proto + ": " + reason
	}
	return Connection{Host: c.Name, IP: c.IP, Port: c.Port, Allowed: c.Allowed, Reason: reason, BytesOut: c.BytesOut, BytesIn: c.BytesIn}
}

var _ = linux.Spec{}
