//go:build !linux

package netproxy

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
)

var errNoPool = errors.New("netproxy: --publish needs Linux network namespaces")

func connectIn(f *os.File, to netip.AddrPort, timeout time.Duration) (*net.TCPConn, error) {
	return nil, errNoPool
}

func disconnect(f *os.File) error { return errNoPool }
