package probe

import (
	"syscall"

	"golang.org/x/sys/unix"
)

var errnoNames = func() map[syscall.Errno]string {
	m := map[syscall.Errno]string{}
	for i := 1; i < 150; i++ {
		if n := unix.ErrnoName(syscall.Errno(i)); n != "" {
			m[syscall.Errno(i)] = n
		}
	}
	return m
}()
