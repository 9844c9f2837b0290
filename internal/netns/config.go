package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// HelperArg is argv[1] that makes the airlock binary run HelperMain.
const HelperArg = "__airlock-netns"

// Default ports inside the sandbox's network namespace.
const (
	DefaultCapturePort = 15001
	DefaultDNSPort     = 53
	DefaultHTTPPort    = 3128
)

// Limits of one helper message (SCM_RIGHTS carries at most 253 fds; the
// egress set uses at most 8).
const (
	MaxForwards   = 64
	MaxPool       = 128
	DefaultPool   = 64
	maxHelperFDs  = 8 + MaxForwards + MaxPool
	maxMessageLen = 16384
)

// Config tells the helper what to set up inside the namespace.
// Zero fields take the defaults.
type Config struct {
	CapturePort int `json:"capture_port,omitempty"`
	DNSPort     int `json:"dns_port,omitempty"`
	HTTPPort    int `json:"http_port,omitempty"`
	// NoEgress skips the egress set (no route, no rules, no capture, DNS
	// or proxy sockets): only Forward and Pool are made (--net none).
	NoEgress bool `json:"no_egress,omitempty"`
	// Forward are loopback addresses to listen on inside the namespace;
	// the broker carries each connection to the same address on the host.
	Forward []netip.AddrPort `json:"forward,omitempty"`
	// Pool is the number of unconnected IPv4 TCP sockets made inside the
	// namespace, for the broker to connect to sandbox ports (--publish).
	Pool int `json:"pool,omitempty"`
}

func (c Config) withDefaults() Config {
	if c.CapturePort == 0 {
		c.CapturePort = DefaultCapturePort
	}
	if c.DNSPort == 0 {
		c.DNSPort = DefaultDNSPort
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = DefaultHTTPPort
	}
	return c
}

func (c Config) validate() error {
	for _, p := range []int{c.CapturePort, c.DNSPort, c.HTTPPort} {
		if p < 1 || p > 65535 {
			return fmt.Errorf("netns: port %d out of range", p)
		}
	}
	// All three are TCP listeners on 127.0.0.1 (DNS also over TCP).
	if c.CapturePort == c.HTTPPort || c.CapturePort == c.DNSPort || c.HTTPPort == c.DNSPort {
		return fmt.Errorf("netns: capture, dns and http ports must differ: %d, %d, %d", c.CapturePort, c.DNSPort, c.HTTPPort)
	}
	if len(c.Forward) > MaxForwards {
		return fmt.Errorf("netns: %d forwards, at most %d", len(c.Forward), MaxForwards)
	}
	if c.Pool < 0 || c.Pool > MaxPool {
		return fmt.Errorf("netns: pool of %d sockets, want 0 to %d", c.Pool, MaxPool)
	}
	for i, a := range c.Forward {
		if err := checkForward(a); err != nil {
			return err
		}
		if slices.Contains(c.Forward[:i], a) {
			return fmt.Errorf("netns: forward %s given twice", a)
		}
		// Port 53 is redirected to the stub; the others are taken.
		if !c.NoEgress && (a.Port() == 53 || int(a.Port()) == c.CapturePort || int(a.Port()) == c.DNSPort || int(a.Port()) == c.HTTPPort) {
			return fmt.Errorf("netns: forward %s: port %d is used by the network policy inside the sandbox", a, a.Port())
		}
	}
	return nil
}

func checkForward(a netip.AddrPort) error {
	if !a.Addr().IsLoopback() || a.Addr().Is4In6() || a.Addr().Zone() != "" {
		return fmt.Errorf("%s: not a loopback address (127.0.0.0/8 or ::1)", a)
	}
	if a.Port() == 0 {
		return fmt.Errorf("%s: port out of range", a)
	}
	return nil
}

// ParseForward reads a --net-forward value: PORT (127.0.0.1:PORT),
// IPv4:PORT or [IPv6]:PORT, a loopback address of the host.
func ParseForward(s string) (netip.AddrPort, error) {
	if p, ok := parsePort(s); ok {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), p), nil
	}
	a, err := parseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--net-forward %s: %w", s, err)
	}
	if err := checkForward(a); err != nil {
		return netip.AddrPort{}, fmt.Errorf("--net-forward %w", err)
	}
	return a, nil
}

// Publish is one --publish value: the broker listens on Host and carries
// each connection to 127.0.0.1:Sandbox inside the sandbox.
type Publish struct {
	Host    netip.AddrPort
	Sandbox uint16
}

// ParsePublish reads a --publish value: PORT (the same port on both
// sides), HOSTPORT:SANDBOXPORT, or HOSTADDR:HOSTPORT:SANDBOXPORT with an
// IPv4 or [IPv6] host address. The host side is 127.0.0.1 unless given.
func ParsePublish(s string) (Publish, error) {
	bad := func(why string) (Publish, error) {
		return Publish{}, fmt.Errorf("--publish %s: %s", s, why)
	}
	hostPart, sbPart := "", s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		hostPart, sbPart = s[:i], s[i+1:]
	}
	sb, ok := parsePort(sbPart)
	if !ok {
		return bad("port out of range or not a number (want PORT, HOSTPORT:SANDBOXPORT or ADDR:HOSTPORT:SANDBOXPORT)")
	}
	lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if hostPart == "" {
		if strings.Contains(s, ":") {
			return bad("empty host port")
		}
		return Publish{Host: netip.AddrPortFrom(lo, sb), Sandbox: sb}, nil
	}
	if hp, ok := parsePort(hostPart); ok {
		return Publish{Host: netip.AddrPortFrom(lo, hp), Sandbox: sb}, nil
	}
	h, err := parseAddrPort(hostPart)
	if err != nil {
		return bad("want PORT, HOSTPORT:SANDBOXPORT or ADDR:HOSTPORT:SANDBOXPORT (ADDR an IPv4 address or [IPv6])")
	}
	if h.Addr().Zone() != "" {
		return bad("zoned addresses are not supported")
	}
	return Publish{Host: h, Sandbox: sb}, nil
}

// parsePort accepts a decimal port 1-65535.
func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, errors.New("want PORT, IPv4:PORT or [IPv6]:PORT")
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address", host)
	}
	p, ok := parsePort(port)
	if !ok {
		return netip.AddrPort{}, errors.New("port out of range or not a number")
	}
	return netip.AddrPortFrom(a.Unmap(), p), nil
}

// HelperArgs returns the argv the launcher passes after the binary path:
// HelperArg, then the config as JSON. The broker's end of a unix socketpair
// must be the helper's fd 3.
func HelperArgs(cfg Config) []string {
	b, _ := json.Marshal(cfg.withDefaults())
	return []string{HelperArg, string(b)}
}

// parseArgs is the inverse of HelperArgs (args without the binary path).
func parseArgs(args []string) (Config, error) {
	if len(args) != 2 || args[0] != HelperArg {
		return Config{}, errors.New("netns: usage: " + HelperArg + " <json config>")
	}
	var c Config
	if err := json.Unmarshal([]byte(args[1]), &c); err != nil {
		return Config{}, fmt.Errorf("netns: bad config: %w", err)
	}
	c = c.withDefaults()
	return c, c.validate()
}

// Listeners are the sockets created inside the sandbox's network namespace,
// held and served by the broker. IPv6 members are nil when the namespace has
// no IPv6.
type Listeners struct {
	Config   Config
	Capture4 *net.TCPListener // 127.0.0.1:CapturePort, all redirected IPv4 TCP
	Capture6 *net.TCPListener // [::1]:CapturePort, all redirected IPv6 TCP
	DNS4     *net.UDPConn     // 127.0.0.1:DNSPort, all UDP port 53
	DNS6     *net.UDPConn     // [::1]:DNSPort
	DNSTCP4  *net.TCPListener // 127.0.0.1:DNSPort, all TCP port 53
	DNSTCP6  *net.TCPListener // [::1]:DNSPort
	// DropLog, when not nil, is a netlink socket reporting the packets the
	// rules dropped; read it and decode with ParseDropLog.
	DropLog *os.File
	HTTP    *net.TCPListener // 127.0.0.1:HTTPPort, HTTP proxy for proxy-aware tools
	// Forward are the Config.Forward listeners (their Addr is the address
	// to dial on the host).
	Forward []*net.TCPListener
	// Pool are unconnected, non-blocking IPv4 TCP sockets of the
	// namespace (Config.Pool): connect one to reach a sandbox port.
	Pool []*os.File
}

// Egress reports whether l holds the egress set (capture, DNS, proxy).
func (l *Listeners) Egress() bool {
	return l.Capture4 != nil && l.DNS4 != nil && l.HTTP != nil
}

// Close closes every socket.
func (l *Listeners) Close() error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, v := range append([]*net.TCPListener{l.Capture4, l.Capture6, l.HTTP, l.DNSTCP4, l.DNSTCP6}, l.Forward...) {
		if v != nil {
			errs = append(errs, v.Close())
		}
	}
	for _, v := range []*net.UDPConn{l.DNS4, l.DNS6} {
		if v != nil {
			errs = append(errs, v.Close())
		}
	}
	if l.DropLog != nil {
		errs = append(errs, l.DropLog.Close())
	}
	for _, f := range l.Pool {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// message is what the helper sends with the file descriptors: their names in
// order, or the reason setup failed.
type message struct {
	Names []string `json:"names,omitempty"`
	Error string   `json:"error,omitempty"`
}

const (
	nameCapture4 = "capture4"
	nameCapture6 = "capture6"
	nameDNS4     = "dns4"
	nameDNS6     = "dns6"
	nameHTTP     = "http"
	nameDNSTCP4  = "dnstcp4"
	nameDNSTCP6  = "dnstcp6"
	nameDropLog  = "droplog"
	nameForward  = "forward"
	namePool     = "pool"
)
