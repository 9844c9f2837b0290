package airlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/airlock-sandbox/airlock/internal/openbsd"
)

// The OpenBSD backend: airlock re-executes itself as a launcher
// (openbsd.MaybeRunLauncher) that applies unveil, exec promises and
// rlimits, then execs the target in its own process group.

func start(l *launch) (process, error) {
	if !openbsd.LauncherInstalled() {
		return nil, &SetupError{Stage: "launcher", Err: errors.New("the OpenBSD launcher hook is not installed in this program"),
			Hint: "call the airlock launcher hook first thing in main"}
	}
	p := l.Policy
	strict := p.Enforce != BestEffort
	target, err := lookPathIn(l.Path, l.Env, "")
	if err != nil {
		return nil, &SetupError{Stage: "command", Err: err}
	}
	req := openbsd.Request{Path: target, Args: l.Args, Env: l.Env, Dir: l.Dir, Strict: strict,
		Limits: openbsd.Limits{CPUTime: p.Limits.CPUTime, Memory: p.Limits.Memory, Procs: p.Limits.Procs,
			FileSize: p.Limits.FileSize, OpenFiles: p.Limits.OpenFiles, Stack: p.Limits.Stack, CPUs: p.Limits.CPUs}}
	if h, err := os.UserHomeDir(); err == nil {
		req.Home = h
	}
	switch p.Network.Mode {
	case NetHost:
		req.Net = openbsd.NetHost
	case NetAllow:
		req.Net = openbsd.NetAllow
	}
	for _, m := range p.Mounts {
		req.Mounts = append(req.Mounts, openbsd.Mount{Kind: openbsd.MountKind(m.Kind), Source: m.Source,
			Dest: m.Dest, Writable: m.Writable, Optional: m.Optional})
	}
	var base string
	cleanup := func() {
		if base != "" {
			removeTree(base)
		}
	}
	host := openbsd.Host{
		Stat:     func(p string) error { _, err := os.Stat(p); return err },
		Readlink: os.Readlink,
		TempDir: func(dest string) (string, error) {
			if base == "" {
				b, err := os.MkdirTemp("", "airlock-")
				if err != nil {
					return "", err
				}
				base = b
			}
			return os.MkdirTemp(base, strings.Trim(filepath.Base(dest), "/.")+"-")
		}}
	plan, err := openbsd.BuildPlan(req, host)
	if err != nil {
		cleanup()
		if errors.Is(err, openbsd.ErrNotEnforceable) {
			err = fmt.Errorf("%w: %v", ErrNotEnforceable, err)
		}
		return nil, &SetupError{Stage: "policy", Err: err}
	}
	self, err := os.Executable()
	if err != nil {
		cleanup()
		return nil, &SetupError{Stage: "launcher", Err: err}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		cleanup()
		return nil, &SetupError{Stage: "launcher", Err: err}
	}
	er, ew, err := os.Pipe()
	if err != nil {
		pr.Close()
		pw.Close()
		cleanup()
		return nil, &SetupError{Stage: "launcher", Err: err}
	}
	cmd := exec.Command(self, openbsd.LauncherArg)
	cmd.Env = []string{} // the launcher execs the target with plan.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = l.Stdio[0], l.Stdio[1], l.Stdio[2]
	cmd.ExtraFiles = []*os.File{pr, ew} // openbsd.PlanFD, openbsd.ErrFD
	// A new session: its own process group to kill, and no controlling
	// terminal (no /dev/tty, no job-control stops when reading stdin).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	began := time.Now()
	err = cmd.Start()
	pr.Close()
	ew.Close()
	if err != nil {
		pw.Close()
		er.Close()
		cleanup()
		return nil, &SetupError{Stage: "start", Err: err}
	}
	go func() {
		openbsd.WritePlan(pw, plan)
		pw.Close()
	}()
	// EOF without a message: the launcher reached exec of the target.
	msg, _ := io.ReadAll(er)
	er.Close()
	if len(msg) > 0 {
		cmd.Wait()
		cleanup()
		return nil, &SetupError{Stage: "launcher", Err: errors.New(string(msg))}
	}
	var rep Report
	for _, n := range plan.Notes {
		rep.add(n.Name, n.Mechanism, ProtectionState(n.State), n.Detail)
	}
	rep.add("environment", "explicit", Enforced, "nothing inherited")
	rep.add("syscalls", "pledge", Enforced, "exec promises; seccomp-style presets and extras are ignored")
	return &bsdProc{groupProc{cmd: cmd, pgid: cmd.Process.Pid, began: began, cpuLimit: p.Limits.CPUTime,
		report: rep, cleanup: cleanup, maxrssUnit: 1024}}, nil
}

type bsdProc struct{ groupProc }

func (p *bsdProc) wait() (*Result, error) {
	res, err := p.finish()
	if res != nil && res.Signal == "SIGABRT" {
		// A pledge violation kills with SIGABRT; so does abort(3).
		res.Denials = append(res.Denials, Denial{Kind: "pledge", Name: "SIGABRT", Count: 1,
			Detail: "possibly a pledge violation: see /var/log/messages"})
	}
	return res, err
}

func probe() Features {
	return Features{OS: "openbsd", Items: []Feature{
		{Name: "unveil", Available: openbsd.LauncherInstalled(), Detail: "file system view, via the re-executed launcher",
			Lost: "all file confinement", Fix: "call the airlock launcher hook first thing in main"},
		{Name: "pledge", Available: openbsd.LauncherInstalled(), Detail: "exec promises: no inet/dns, no proc/exec for procs=1",
			Lost: "network and process confinement", Fix: "call the airlock launcher hook first thing in main"},
		{Name: "rlimits", Available: true, Detail: "cpu time, file size, open files, data (one process), no core"},
		{Name: "process-group", Available: true, Detail: "kill(-pgid); setsid escapes it"},
		{Name: "memory-limit", Available: false, Lost: "memory limits of a tree", Detail: "RLIMIT_DATA is per process"},
	}}
}

func launchPlan(l *launch) (string, error) { return "", ErrUnsupported }
