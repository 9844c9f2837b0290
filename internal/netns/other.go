//go:build !linux

package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
)

var errUnsupported = errors.New("netns: network namespaces are not supported on " + runtime.GOOS)

// HelperMain is Linux-only; elsewhere it reports and exits 1.
func HelperMain() {
	fmt.Fprintln(os.Stderr, errUnsupported)
	os.Exit(1)
}

// ReceiveListeners is Linux-only.
func ReceiveListeners(conn *os.File) (*Listeners, error) { return nil, errUnsupported }

// OriginalDst is Linux-only.
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) { return netip.AddrPort{}, errUnsupported }

// Check is Linux-only.
func Check(exe string) error { return errUnsupported }
