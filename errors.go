package airlock

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// ExitError reports a program outcome other than OK, like *exec.ExitError.
type ExitError struct{ *Result }

func (e *ExitError) Error() string {
	switch e.Status {
	case NonZeroExit:
		return fmt.Sprintf("exit status %d", e.ExitCode)
	case Signaled:
		return "killed by " + e.Signal
	default:
		return "sandboxed program stopped: " + string(e.Status)
	}
}

// SetupError is a failure to build the sandbox, naming the stage that failed
// ("mount /usr", "uid map", "seccomp"). errors.Is(err, syscall.EPERM) works.
type SetupError struct {
	Stage string
	Err   error
	// Hint says how to fix the host, when airlock knows.
	Hint string
}

func (e *SetupError) Error() string {
	msg := e.Err.Error()
	// Packages name themselves in their errors ("cgroup: ..."): say the
	// stage once.
	if !strings.HasPrefix(msg, e.Stage+": ") {
		msg = e.Stage + ": " + msg
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *SetupError) Unwrap() error { return e.Err }

// ErrUnsupported is returned on systems airlock has no backend for yet.
var ErrUnsupported = errors.New("not supported yet on " + runtime.GOOS)

// ErrNotEnforceable is wrapped by a SetupError when the policy asks for a
// protection this host cannot give and Policy.Enforce is Strict.
var ErrNotEnforceable = errors.New("protection not available on this host")
