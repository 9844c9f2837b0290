//go:build darwin

package airlock

import (
	"net"

	"github.com/airlock-sandbox/airlock/internal/netproxy"
)

// httpEgress starts the broker's HTTP proxy for an allow-list on a free
// loopback port.
func httpEgress(n Network) (*netproxy.Proxy, int, error) {
	pol := netproxy.Policy{Allow: n.Allow, Deny: n.Deny, AllowPrivate: n.AllowPrivate}
	if err := pol.Validate(); err != nil {
		return nil, 0, &SetupError{Stage: "network", Err: err}
	}
	px, err := netproxy.New(pol, netproxy.Options{})
	if err != nil {
		return nil, 0, &SetupError{Stage: "network proxy", Err: err}
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		px.Close()
		return nil, 0, &SetupError{Stage: "network proxy", Err: err}
	}
	if err := px.ServeHTTPProxy(ln); err != nil {
		px.Close()
		return nil, 0, &SetupError{Stage: "network proxy", Err: err}
	}
	return px, ln.Addr().(*net.TCPAddr).Port, nil
}
