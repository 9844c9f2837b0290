package airlock

import "runtime"

// The darwin backend is not written yet.

func start(l *launch) (process, error) {
	return nil, &SetupError{Stage: "backend", Err: ErrUnsupported}
}

func probe() Features { return Features{OS: runtime.GOOS} }
