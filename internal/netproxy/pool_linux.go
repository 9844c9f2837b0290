package netproxy

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// connectIn connects f, an unconnected TCP socket of the sandbox's
// namespace, to to: the connection is made in that namespace. It returns a
// separate descriptor of the connected socket; f stays open.
func connectIn(f *os.File, to netip.AddrPort, timeout time.Duration) (*net.TCPConn, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()}
	var cerr error
	if err := rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), sa) }); err != nil {
		return nil, err
	}
	if cerr == unix.EINPROGRESS || cerr == unix.EALREADY {
		f.SetWriteDeadline(time.Now().Add(timeout))
		werr := rc.Write(func(fd uintptr) bool {
			v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case err != nil:
				cerr = err
			case v != 0:
				cerr = unix.Errno(v)
			default:
				// The poller can wake early: connected only with a peer.
				if _, err := unix.Getpeername(int(fd)); err != nil {
					return false
				}
				cerr = nil
			}
			return true
		})
		f.SetWriteDeadline(time.Time{})
		if werr != nil {
			cerr = werr
		}
	}
	if cerr != nil {
		return nil, cerr
	}
	nc, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		nc.Close()
		return nil, errors.New("not a TCP socket")
	}
	return tc, nil
}

// disconnect makes f an unconnected socket again (connect with AF_UNSPEC),
// so the pool serves any number of connections, at most its size at once.
func disconnect(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var derr error
	sa := unix.RawSockaddr{Family: unix.AF_UNSPEC}
	if err := rc.Control(func(fd uintptr) {
		_, _, e := unix.Syscall(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
		if e != 0 {
			derr = e
		}
	}); err != nil {
		return err
	}
	return derr
}
