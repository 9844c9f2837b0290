//go:build linux && !amd64

package linux

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// forkTarget starts the target with a plain fork where no vfork helper is
// written for the architecture. The child runs the target's ops and never
// returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
//go:noinline
func forkTarget(prog *program, errFd int) (pid uintptr, errno syscall.Errno) {
	r1, _, e1 := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if e1 != 0 || r1 != 0 {
		return r1, e1
	}
	startTarget(prog, errFd)
	return 0, 0
}
