package seccomp

import "fmt"

type actionKind uint8

// The zero kind is KillProcess so an unset Action fails closed.
const (
	kindKillProcess actionKind = iota
	kindAllow
	kindErrno
	kindTrap
	kindNotify
	kindLog
)

// Action is what the filter does with a syscall.
type Action struct {
	kind  actionKind
	errno uint16
}

// The actions. Errno(e) makes the syscall fail with e without running it.
var (
	Allow       = Action{kind: kindAllow}
	KillProcess = Action{kind: kindKillProcess}
	Trap        = Action{kind: kindTrap}   // SIGSYS to the thread
	Notify      = Action{kind: kindNotify} // SECCOMP_RET_USER_NOTIF: the broker answers
	Log         = Action{kind: kindLog}    // allow and log to the audit log
)

// Errno returns the action that fails the syscall with errno e (1..4095).
func Errno(e int) Action { return Action{kind: kindErrno, errno: uint16(e)} }

// Seccomp return values (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retUserNotif   = 0x7fc00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
)

// Ret is the 32-bit value a seccomp BPF program returns for a.
func (a Action) Ret() uint32 {
	switch a.kind {
	case kindAllow:
		return retAllow
	case kindErrno:
		return retErrno | uint32(a.errno)
	case kindTrap:
		return retTrap
	case kindNotify:
		return retUserNotif
	case kindLog:
		return retLog
	}
	return retKillProcess
}

// ActionFromRet decodes a seccomp return value (used by tests and tools).
func ActionFromRet(r uint32) Action {
	switch r & 0xffff0000 {
	case retAllow:
		return Allow
	case retErrno:
		return Errno(int(r & 0xffff))
	case retTrap:
		return Trap
	case retUserNotif:
		return Notify
	case retLog:
		return Log
	}
	return KillProcess
}

// ErrnoValue reports the errno of an Errno action.
// (A Notify made by WithNotify also carries the errno the broker answers with.)
func (a Action) ErrnoValue() (int, bool) { return int(a.errno), a.kind == kindErrno }

// Allows reports whether the syscall runs (Allow or Log).
func (a Action) Allows() bool { return a.kind == kindAllow || a.kind == kindLog }

func (a Action) valid() error {
	if a.kind > kindLog {
		return fmt.Errorf("seccomp: invalid action kind %d", a.kind)
	}
	if a.kind == kindErrno && (a.errno == 0 || a.errno > 4095) {
		return fmt.Errorf("seccomp: errno %d out of range 1..4095", a.errno)
	}
	return nil
}

func (a Action) String() string {
	switch a.kind {
	case kindAllow:
		return "allow"
	case kindErrno:
		return fmt.Sprintf("errno(%d)", a.errno)
	case kindNotify:
		if a.errno != 0 {
			return fmt.Sprintf("notify(errno %d)", a.errno)
		}
		return "notify"
	case kindTrap:
		return "trap"
	case kindLog:
		return "log"
	}
	return "kill-process"
}
