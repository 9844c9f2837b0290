package linux

import "syscall"

// rawVfork is clone(CLONE_VM|CLONE_VFORK|SIGCHLD) on the caller's stack.
// The child returns 0 and must never return from the function that called
// rawVfork; the parent returns once the child has exec'd or exited, with a
// return address it kept in a register, not on the stack the child used.
func rawVfork() (pid uintptr, errno syscall.Errno)

// forkTarget starts the target sharing the init's memory until its exec
// (vfork): no copy of the broker's page tables that the exec would tear
// down again. The init waits meanwhile. In the parent it returns the
// target's pid; the child runs the target's ops and never returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
//go:noinline
func forkTarget(prog *program, errFd int) (pid uintptr, errno syscall.Errno) {
	pid, errno = rawVfork()
	if errno != 0 || pid != 0 {
		// Parent: only the results, which rawVfork wrote after the child
		// left this stack, and the return address, which the child does
		// not touch.
		return
	}
	startTarget(prog, errFd)
	return
}
