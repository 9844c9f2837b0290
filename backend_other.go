//go:build !linux && !darwin && !windows && !openbsd

package airlock

import "runtime"

func start(l *launch) (process, error) {
	return nil, &SetupError{Stage: "backend", Err: ErrUnsupported}
}

func probe() Features { return Features{OS: runtime.GOOS} }
