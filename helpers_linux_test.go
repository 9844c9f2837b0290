package airlock_test

import (
	"net"
	"sync/atomic"
	"unsafe"
)

func unsafePointer(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }

type unixListener struct {
	net.Listener
	addr string
	n    atomic.Int32
}

func (l *unixListener) accepted() int { return int(l.n.Load()) }

// net_ListenUnix listens on a unix socket ("@name" is abstract) and counts
// every accepted connection.
func net_ListenUnix(addr string) (*unixListener, error) {
	l, err := net.Listen("unix", addr)
	if err != nil {
		return nil, err
	}
	ul := &unixListener{Listener: l, addr: addr}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ul.n.Add(1)
			c.Close()
		}
	}()
	return ul, nil
}
