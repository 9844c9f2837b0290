package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
)

// HelperArg is argv[1] that makes the airlock binary run HelperMain.
const HelperArg = "__airlock-netns"

// Default ports inside the sandbox's network namespace.
const (
	DefaultCapturePort = 15001
	DefaultDNSPort     = 53
	DefaultHTTPPort    = 3128
)

// Config tells the helper which ports to use inside the namespace.
// Zero fields take the defaults.
type Config struct {
	CapturePort int `json:"capture_port,omitempty"`
	DNSPort     int `json:"dns_port,omitempty"`
	HTTPPort    int `json:"http_port,omitempty"`
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
	return nil
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
}

// Close closes every socket.
func (l *Listeners) Close() error {
	if l == nil {
		return nil
	}
	var errs []error
	for _, v := range []*net.TCPListener{l.Capture4, l.Capture6, l.HTTP, l.DNSTCP4, l.DNSTCP6} {
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
)
