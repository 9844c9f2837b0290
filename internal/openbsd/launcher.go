package openbsd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// LauncherArg is the hidden argv[1] that makes an airlock binary act as the
// OpenBSD launcher instead of running its own main.
const LauncherArg = "__airlock-openbsd-launch"

// PlanFD is the descriptor the launcher reads its plan from; ErrFD is a
// pipe it writes a failure to (it closes on a successful exec).
const (
	PlanFD = 3
	ErrFD  = 4
)

var hooked atomic.Bool

// MaybeRunLauncher must be called first thing in main of any program that
// runs OpenBSD sandboxes. When this process is a launcher it applies the
// plan from PlanFD and execs the target, never returning; otherwise it
// records that the hook exists and returns at once.
func MaybeRunLauncher() {
	hooked.Store(true)
	if len(os.Args) > 1 && os.Args[1] == LauncherArg {
		ef := os.NewFile(ErrFD, "errors")
		setCloexec(ErrFD)
		f := os.NewFile(PlanFD, "plan")
		pl, err := ReadPlan(f)
		if f != nil {
			f.Close()
		}
		if err == nil {
			err = apply(pl)
		}
		if ef == nil || func() error { _, e := fmt.Fprint(ef, err); return e }() != nil {
			fmt.Fprintln(os.Stderr, "airlock launcher:", err)
		}
		os.Exit(125)
	}
}

// LauncherInstalled reports whether MaybeRunLauncher was called.
func LauncherInstalled() bool { return hooked.Load() }

// WritePlan encodes pl for the launcher.
func WritePlan(w io.Writer, pl Plan) error { return json.NewEncoder(w).Encode(pl) }

// ReadPlan decodes what WritePlan wrote.
func ReadPlan(r io.Reader) (Plan, error) {
	var pl Plan
	if r == nil {
		return pl, errors.New("no plan descriptor")
	}
	if err := json.NewDecoder(io.LimitReader(r, 16<<20)).Decode(&pl); err != nil {
		return pl, fmt.Errorf("reading plan: %w", err)
	}
	if pl.Path == "" || len(pl.Args) == 0 {
		return pl, errors.New("plan has no program")
	}
	return pl, nil
}

// Step is one action of the launcher, for tests and for `airlock check`.
type Step struct{ Call, Arg1, Arg2 string }

// Steps lists the launcher's calls for pl in the order it makes them.
func Steps(pl Plan) []Step {
	s := []Step{{"chdir", pl.Dir, ""}}
	for _, r := range pl.Rlimits {
		s = append(s, Step{"setrlimit", r.Name, fmt.Sprintf("%d:%d", r.Cur, r.Max)})
	}
	for _, u := range pl.Unveils {
		s = append(s, Step{"unveil", u.Path, u.Perms})
	}
	s = append(s, Step{"unveil", "", ""}, Step{"pledge", "", pl.ExecPromises}, Step{"execve", pl.Path, ""})
	return s
}
