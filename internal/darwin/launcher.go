package darwin

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// LauncherArg is the hidden argv[1] that makes an airlock binary act as the
// rlimit launcher instead of running its own main.
const LauncherArg = "__airlock-darwin-launch"

// ErrFD is a pipe the launcher writes a failure to; it closes on exec.
const ErrFD = 3

var hooked atomic.Bool

// MaybeRunLauncher must be called first thing in main of any program that
// runs darwin sandboxes with limits. When this process is a launcher it
// applies the rlimits and execs sandbox-exec, never returning; otherwise it
// records that the hook exists and returns at once. It does nothing else on
// other systems.
func MaybeRunLauncher() {
	hooked.Store(true)
	if len(os.Args) > 1 && os.Args[1] == LauncherArg {
		ef := os.NewFile(ErrFD, "errors")
		err := runLauncher(os.Args[2:])
		if ef == nil || func() error { _, e := fmt.Fprint(ef, err); return e }() != nil {
			fmt.Fprintln(os.Stderr, "airlock launcher:", err)
		}
		os.Exit(125)
	}
}

// LauncherInstalled reports whether MaybeRunLauncher was called.
func LauncherInstalled() bool { return hooked.Load() }

// LauncherArgs is the launcher's command line after argv[0]: apply rl, then
// exec argv.
func LauncherArgs(rl []Rlimit, argv []string) []string {
	out := []string{LauncherArg}
	for _, r := range rl {
		out = append(out, fmt.Sprintf("%s=%d:%d", r.Name, r.Cur, r.Max))
	}
	out = append(out, "--")
	return append(out, argv...)
}

// ParseLauncherArgs is the inverse of LauncherArgs without LauncherArg.
func ParseLauncherArgs(args []string) ([]Rlimit, []string, error) {
	var rl []Rlimit
	for i, a := range args {
		if a == "--" {
			if i+1 >= len(args) {
				return nil, nil, errors.New("no program after --")
			}
			return rl, args[i+1:], nil
		}
		name, v, ok := strings.Cut(a, "=")
		cs, ms, ok2 := strings.Cut(v, ":")
		if !ok || !ok2 {
			return nil, nil, fmt.Errorf("bad limit %q", a)
		}
		cur, err1 := strconv.ParseUint(cs, 10, 64)
		max, err2 := strconv.ParseUint(ms, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("bad limit %q", a)
		}
		rl = append(rl, Rlimit{name, cur, max})
	}
	return nil, nil, errors.New("missing --")
}
