package airlock

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/airlock-sandbox/airlock/internal/windows"
)

// The Windows backend: AppContainer (or a restricted low-integrity token),
// job object, alternate desktop, mitigations; see docs/windows.md.

func start(l *launch) (process, error) {
	spec, err := windowsSpec(l)
	if err != nil {
		return nil, &SetupError{Stage: "policy", Err: err}
	}
	plan, err := windows.BuildPlan(spec)
	if err != nil {
		return nil, &SetupError{Stage: "policy", Err: notEnforceable(err)}
	}
	// The journal is also needed without grants: each run repairs the
	// grants a crashed broker left behind.
	j, err := windows.DefaultJournal(fmt.Sprint(os.Getpid(), "-", runSeq.Add(1)))
	if err != nil && len(plan.Grants) > 0 {
		return nil, &SetupError{Stage: "grants journal", Err: err, Hint: "set LOCALAPPDATA"}
	}
	p, err := windows.Start(plan, windows.Command{Path: spec.Program, Args: l.Args, Env: l.Env, Dir: spec.Dir, Stdio: l.Stdio}, j)
	if err != nil {
		return nil, &SetupError{Stage: "start", Err: notEnforceable(err)}
	}
	return &winProcess{p: p}, nil
}

// runSeq tells apart the runs of one broker in the grants journal.
var runSeq atomic.Int64

// notEnforceable makes the internal "cannot enforce" error match
// airlock.ErrNotEnforceable too, keeping its text.
func notEnforceable(err error) error {
	if errors.Is(err, windows.ErrNotEnforceable) {
		return enforceErr{err}
	}
	return err
}

type enforceErr struct{ error }

func (e enforceErr) Is(target error) bool { return target == ErrNotEnforceable }
func (e enforceErr) Unwrap() error        { return e.error }

func windowsSpec(l *launch) (windows.Spec, error) {
	p := l.Policy
	dir := l.Dir
	if dir == "" || dir == "/" {
		// The portable default: every AppContainer may use the Windows
		// directory, so the target can always start there.
		dir = os.Getenv("SystemRoot")
	}
	s := windows.Spec{
		Dir:        dir,
		Net:        string(p.Network.Mode),
		Strict:     p.Enforce != BestEffort,
		HostCPUs:   runtime.NumCPU(),
		SystemDirs: windows.SystemDirs(),
		Limits: windows.Limits{Procs: p.Limits.Procs, Memory: p.Limits.Memory, CPUs: p.Limits.CPUs,
			CPUTime: p.Limits.CPUTime, FileSize: p.Limits.FileSize, OpenFiles: p.Limits.OpenFiles, Stack: p.Limits.Stack},
	}
	for _, m := range p.Mounts {
		switch m.Kind {
		case Bind:
			if m.Optional {
				if _, err := os.Stat(m.Source); err != nil {
					continue
				}
			}
			s.Binds = append(s.Binds, windows.Bind{Source: m.Source, Dest: m.Dest, Write: m.Writable, Optional: m.Optional})
		case TmpfsMount:
			s.Unmapped = append(s.Unmapped, "tmpfs "+m.Dest)
		case Symlink:
			s.Unmapped = append(s.Unmapped, "symlink "+m.Dest)
		case File:
			s.Unmapped = append(s.Unmapped, "file "+m.Dest)
		}
	}
	isFile := func(p string) bool { fi, err := os.Stat(p); return err == nil && fi.Mode().IsRegular() }
	prog, err := windows.LookPath(l.Path, l.Env, dir, isFile)
	if err != nil {
		return s, err
	}
	s.Program = prog
	return s, nil
}

type winProcess struct{ p *windows.Process }

func (w *winProcess) kill() { w.p.Kill() }

func (w *winProcess) wait() (*Result, error) {
	out, err := w.p.Wait()
	if err != nil {
		return nil, err
	}
	res := &Result{Status: Status(out.Status), ExitCode: int(out.ExitCode), Signal: out.Signal,
		CPUTime: out.CPUTime, MemoryPeak: out.MemoryPeak}
	for _, x := range out.Report {
		res.Enforced.add(x.Name, x.Mechanism, ProtectionState(x.State), x.Detail)
	}
	if out.CleanupErr != nil {
		res.Enforced.add("cleanup", "grants journal", Degraded,
			"undoing the sandbox failed; the next run repairs grants: "+strings.TrimSpace(out.CleanupErr.Error()))
	}
	return res, nil
}

func probe() Features {
	f := Features{OS: runtime.GOOS}
	for _, x := range windows.Probe() {
		it := Feature{Name: x.Name, Available: x.Available, Detail: x.Detail}
		if !x.Available {
			it.Lost = x.Lost
		}
		f.Items = append(f.Items, it)
	}
	return f
}

func launchPlan(l *launch) (string, error) { return "", ErrUnsupported }
