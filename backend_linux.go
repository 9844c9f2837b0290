package airlock

// Placeholder until the Linux launcher lands.
func start(l *launch) (process, error) {
	return nil, &SetupError{Stage: "backend", Err: ErrUnsupported}
}

func probe() Features { return Features{OS: "linux"} }
