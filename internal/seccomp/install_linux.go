package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SockFilter must match unix.SockFilter bit for bit (cast below).
var (
	_ [unsafe.Sizeof(SockFilter{}) - unsafe.Sizeof(unix.SockFilter{})]byte
	_ [unsafe.Sizeof(unix.SockFilter{}) - unsafe.Sizeof(SockFilter{})]byte
	_ [unsafe.Offsetof(SockFilter{}.K) - unsafe.Offsetof(unix.SockFilter{}.K)]byte
	_ [unsafe.Offsetof(unix.SockFilter{}.K) - unsafe.Offsetof(SockFilter{}.K)]byte
)

// ToUnix views insns as []unix.SockFilter without copying.
func ToUnix(insns []SockFilter) []unix.SockFilter {
	if len(insns) == 0 {
		return nil
	}
	return unsafe.Slice((*unix.SockFilter)(unsafe.Pointer(&insns[0])), len(insns))
}

// Fprog returns a sock_fprog pointing at insns (no copy). Call it in the
// parent; the pointer stays valid as long as insns is reachable, so a raw
// forked child can pass it to seccomp(2) without allocating.
func Fprog(insns []SockFilter) *unix.SockFprog {
	p := &unix.SockFprog{Len: uint16(len(insns))}
	if len(insns) > 0 {
		p.Filter = (*unix.SockFilter)(unsafe.Pointer(&insns[0]))
	}
	return p
}

// Install sets no_new_privs and installs prog on the calling thread with
// seccomp(SECCOMP_SET_MODE_FILTER, flags). Callers that are Go programs
// must hold runtime.LockOSThread, and pass SECCOMP_FILTER_FLAG_TSYNC to
// cover every thread. With SECCOMP_FILTER_FLAG_NEW_LISTENER it returns the
// listener fd, else -1.
func Install(prog *unix.SockFprog, flags uintptr) (int, error) {
	if prog.Len == 0 || int(prog.Len) > MaxInsns {
		return -1, fmt.Errorf("seccomp: program length %d", prog.Len)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("seccomp: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(prog)))
	if e != 0 {
		return -1, fmt.Errorf("seccomp: seccomp(SET_MODE_FILTER, %#x): %w", flags, e)
	}
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return int(r), nil
	}
	if r != 0 { // TSYNC without ESRCH: r is the thread that could not sync
		return -1, fmt.Errorf("seccomp: TSYNC failed for thread %d", r)
	}
	return -1, nil
}
