//go:build darwin || linux

package darwin

import (
	"fmt"
	"os"
	"syscall"
)

var rlimitResource = map[string]int{
	"cpu": syscall.RLIMIT_CPU, "fsize": syscall.RLIMIT_FSIZE,
	"nofile": syscall.RLIMIT_NOFILE, "stack": syscall.RLIMIT_STACK,
	"core": syscall.RLIMIT_CORE,
}

// runLauncher sets the limits and execs the rest; it returns only on error.
func runLauncher(args []string) error {
	syscall.CloseOnExec(ErrFD)
	rl, argv, err := ParseLauncherArgs(args)
	if err != nil {
		return err
	}
	for _, r := range rl {
		res, ok := rlimitResource[r.Name]
		if !ok {
			return fmt.Errorf("unknown limit %q", r.Name)
		}
		// syscall.Setrlimit (not x/sys) so the runtime does not restore
		// its saved RLIMIT_NOFILE on exec.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Cur, Max: r.Max}); err != nil {
			return fmt.Errorf("setrlimit %s: %w", r.Name, err)
		}
	}
	return syscall.Exec(argv[0], argv, os.Environ())
}
