package airlock

import (
	"github.com/airlock-sandbox/airlock/internal/darwin"
	"github.com/airlock-sandbox/airlock/internal/openbsd"
)

// RunHelper must be called first thing in main by programs that run
// sandboxes. Some backends re-execute the calling program in a helper role
// (the macOS and OpenBSD launchers, the Linux network set-up and cgroup
// janitor); in that role RunHelper does the job and never returns.
// Otherwise it returns at once.
func RunHelper() {
	darwin.MaybeRunLauncher()
	openbsd.MaybeRunLauncher()
	runPlatformHelper()
}
