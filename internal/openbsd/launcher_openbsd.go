package openbsd

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

var rlimitResource = map[string]int{
	"cpu": unix.RLIMIT_CPU, "fsize": unix.RLIMIT_FSIZE, "nofile": unix.RLIMIT_NOFILE,
	"stack": unix.RLIMIT_STACK, "data": unix.RLIMIT_DATA, "core": unix.RLIMIT_CORE,
}

func setCloexec(fd int) { syscall.CloseOnExec(fd) }

// apply runs Steps(pl); it returns only on error.
func apply(pl Plan) error {
	if pl.Dir != "" {
		if err := syscall.Chdir(pl.Dir); err != nil {
			return fmt.Errorf("chdir %s: %w", pl.Dir, err)
		}
	}
	for _, r := range pl.Rlimits {
		res, ok := rlimitResource[r.Name]
		if !ok {
			return fmt.Errorf("unknown limit %q", r.Name)
		}
		// syscall.Setrlimit so the runtime does not restore its saved
		// RLIMIT_NOFILE on exec.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			return fmt.Errorf("setrlimit %s: %w", r.Name, err)
		}
	}
	for _, u := range pl.Unveils {
		// A missing path grants nothing; skipping it only narrows access.
		if err := unix.Unveil(u.Path, u.Perms); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unveil %s %q: %w", u.Path, u.Perms, err)
		}
	}
	if err := unix.UnveilBlock(); err != nil {
		return fmt.Errorf("unveil lock: %w", err)
	}
	// Exec promises bind the target from its first instruction and keep the
	// unveil set across exec; the launcher itself stays unpledged.
	if err := unix.PledgeExecpromises(pl.ExecPromises); err != nil {
		return fmt.Errorf("pledge execpromises %q: %w", pl.ExecPromises, err)
	}
	return fmt.Errorf("exec %s: %w", pl.Path, syscall.Exec(pl.Path, pl.Args, pl.Env))
}
