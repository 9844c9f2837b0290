//go:build !linux && !darwin && !windows && !openbsd

package airlock

import (
	"fmt"
	"runtime"
)

// unsupportedWhy names what a backend here would be built from.
func unsupportedWhy() string {
	switch runtime.GOOS {
	case "freebsd":
		return "a FreeBSD backend would use jails with nullfs mounts (root only) for the file and network view, " +
			"rlimits, and procctl(PROC_REAP_ACQUIRE/PROC_REAP_KILL) to kill the whole tree; " +
			"Capsicum alone only fits programs written for capability mode"
	case "netbsd", "dragonfly":
		return "no unprivileged file or network confinement is available to build on; only rlimits and process groups"
	}
	return "no sandbox backend for this system"
}

func start(l *launch) (process, error) {
	return nil, &SetupError{Stage: "backend", Err: fmt.Errorf("%w: %s", ErrUnsupported, unsupportedWhy())}
}

func probe() Features { return Features{OS: runtime.GOOS} }

func launchPlan(l *launch) (string, error) { return "", ErrUnsupported }
