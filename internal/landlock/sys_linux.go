package landlock

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ABI returns the kernel's Landlock ABI version. The error says why
// Landlock is unusable (ENOSYS: not built in; EOPNOTSUPP: disabled at boot).
func ABI() (int, error) {
	v, _, e := syscall.RawSyscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if e != 0 {
		return 0, fmt.Errorf("landlock: landlock_create_ruleset(VERSION): %w", e)
	}
	return int(v), nil
}

func sysNums() (sysnums, error) {
	return sysnums{
		createRuleset: unix.SYS_LANDLOCK_CREATE_RULESET,
		addRule:       unix.SYS_LANDLOCK_ADD_RULE,
		restrictSelf:  unix.SYS_LANDLOCK_RESTRICT_SELF,
		openat:        unix.SYS_OPENAT,
		close:         unix.SYS_CLOSE,
		oPath:         unix.O_PATH,
		oCloexec:      unix.O_CLOEXEC,
		atFDCWD:       uintptr(^uint(0) - 99), // AT_FDCWD = -100
	}, nil
}

// Run executes ops as documented on Op and returns (-1, 0) on success, or
// the index of the failing op and its errno. It uses only RawSyscall6,
// allocates nothing and never grows its stack, so its loop can run in a
// child created by a raw clone. It restricts only the calling thread: call
// it with the OS thread locked, and do not expect other threads of a Go
// process to be restricted.
//
//go:nosplit
//go:norace
func Run(ops []Op) (int, syscall.Errno) {
	var slot [NumSlots]uintptr
	for i := 0; i < len(ops); i++ {
		op := &ops[i]
		a := op.Args
		for j := 0; j < 6; j++ {
			if s := op.ArgFromSlot[j]; s >= 0 {
				a[j] = slot[s]
			}
		}
		r1, _, e := syscall.RawSyscall6(op.Nr, a[0], a[1], a[2], a[3], a[4], a[5])
		if e != 0 {
			if op.IgnoreErrno {
				continue
			}
			if op.Tolerate != 0 && e == op.Tolerate {
				i += op.SkipOnErr
				continue
			}
			return i, e
		}
		if op.Result >= 0 {
			slot[op.Result] = r1
		}
		for _, p := range op.StoreFDAt {
			if p != nil {
				*(*int32)(p) = int32(r1)
			}
		}
		i += op.SkipOnOK
	}
	return -1, 0
}
