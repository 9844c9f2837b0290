package airlock

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/airlock-sandbox/airlock/internal/netproxy"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/airlock-sandbox/airlock/internal/darwin"
)

// The macOS backend: a Seatbelt profile generated from the policy, applied
// by /usr/bin/sandbox-exec, with rlimits set by airlock's own launcher
// (darwin.MaybeRunLauncher) and the tree in its own process group.

// checkedProfiles caches profile texts sandbox-exec has accepted, so a
// profile it rejects is a setup error, not the program's exit status.
var checkedProfiles sync.Map

func start(l *launch) (process, error) {
	p := l.Policy
	strict := p.Enforce != BestEffort
	tag, err := runTag()
	if err != nil {
		return nil, &SetupError{Stage: "tag", Err: err}
	}
	var base string
	req := darwin.Request{Env: l.Env, Dir: l.Dir, Strict: strict, Tag: tag,
		Launcher: darwin.LauncherInstalled(), TTYs: ttyPaths(l.Stdio),
		Limits: darwin.Limits{CPUTime: p.Limits.CPUTime, Memory: p.Limits.Memory, Procs: p.Limits.Procs,
			FileSize: p.Limits.FileSize, OpenFiles: p.Limits.OpenFiles, Stack: p.Limits.Stack, CPUs: p.Limits.CPUs}}
	if h, err := os.UserHomeDir(); err == nil {
		req.Home = h
	}
	for _, m := range p.Mounts {
		req.Mounts = append(req.Mounts, darwin.Mount{Kind: darwin.MountKind(m.Kind), Source: m.Source,
			Dest: m.Dest, Writable: m.Writable, Optional: m.Optional})
	}
	var extra Report
	var proxy *netproxy.Proxy
	switch p.Network.Mode {
	case NetHost:
		req.Net = darwin.NetHost
	case NetAllow:
		// Seatbelt cannot redirect connections: the profile allows TCP only
		// to the broker's HTTP proxy, which keeps the allow-list; programs
		// that ignore proxy variables get no network at all.
		px, port, err := httpEgress(p.Network)
		if err != nil {
			return nil, err
		}
		proxy = px
		req.Net, req.ProxyPort = darwin.NetProxy, port
		req.Env = append(append([]string(nil), req.Env...), netproxy.ProxyEnvFor(port)...)
		extra.add("network", "Seatbelt: TCP only to the broker's HTTP proxy", Degraded,
			"allow-list kept for proxy-aware programs; others have no network")
	}
	host := darwin.Host{EvalSymlinks: filepath.EvalSymlinks, Readlink: os.Readlink,
		TempDir: func(dest string) (string, error) {
			if base == "" {
				b, err := os.MkdirTemp("", "airlock-"+tag+"-")
				if err != nil {
					return "", err
				}
				base = b
			}
			return os.MkdirTemp(base, strings.Trim(filepath.Base(dest), "/.")+"-")
		}}
	cleanup := func() {
		if proxy != nil {
			proxy.Close()
		}
		if base != "" {
			removeTree(base)
		}
	}
	plan, err := darwin.Prepare(req, host)
	if err != nil {
		cleanup()
		if errors.Is(err, darwin.ErrNotEnforceable) {
			err = fmt.Errorf("%w: %v", ErrNotEnforceable, err)
		}
		return nil, &SetupError{Stage: "policy", Err: err}
	}
	prof, err := darwin.Generate(plan.Spec)
	if err != nil {
		cleanup()
		return nil, &SetupError{Stage: "profile", Err: err}
	}
	if err := checkProfile(prof); err != nil {
		cleanup()
		return nil, &SetupError{Stage: "sandbox-exec", Err: err, Hint: "the generated Seatbelt profile was rejected; please report it"}
	}
	target, err := lookPathIn(l.Path, plan.Env, plan.Dir)
	if err != nil {
		cleanup()
		return nil, &SetupError{Stage: "command", Err: err}
	}
	argv := append([]string{darwin.SandboxExec}, prof.Args(append([]string{target}, l.Args[1:]...))...)
	var cmd *exec.Cmd
	var er, ew *os.File
	if len(plan.Rlimits) > 0 {
		self, err := os.Executable()
		if err == nil {
			er, ew, err = os.Pipe()
		}
		if err != nil {
			cleanup()
			return nil, &SetupError{Stage: "launcher", Err: err}
		}
		cmd = exec.Command(self, darwin.LauncherArgs(plan.Rlimits, argv)...)
		cmd.ExtraFiles = []*os.File{ew} // darwin.ErrFD
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	cmd.Env, cmd.Dir = plan.Env, plan.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = l.Stdio[0], l.Stdio[1], l.Stdio[2]
	// A new session: its own process group to kill, and no controlling
	// terminal (no /dev/tty, no job-control stops when reading stdin).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	began := time.Now()
	err = cmd.Start()
	if ew != nil {
		ew.Close()
	}
	if err != nil {
		if er != nil {
			er.Close()
		}
		cleanup()
		return nil, &SetupError{Stage: "start", Err: err}
	}
	if er != nil {
		// EOF without a message: the launcher reached exec of sandbox-exec.
		msg, _ := io.ReadAll(er)
		er.Close()
		if len(msg) > 0 {
			cmd.Wait()
			cleanup()
			return nil, &SetupError{Stage: "launcher", Err: errors.New(string(msg))}
		}
	}
	rep := extra
	for _, n := range plan.Notes {
		rep.add(n.Name, n.Mechanism, ProtectionState(n.State), n.Detail)
	}
	rep.add("environment", "explicit", Enforced, "nothing inherited")
	rep.add("syscalls", "seatbelt", Degraded, "no syscall filter: Seatbelt checks operations; presets and extras are ignored")
	return &darwinProc{tag: tag, proxy: proxy, groupProc: groupProc{cmd: cmd, pgid: cmd.Process.Pid, began: began,
		cpuLimit: p.Limits.CPUTime, report: rep, cleanup: cleanup, maxrssUnit: 1}}, nil
}

type darwinProc struct {
	groupProc
	tag   string
	proxy *netproxy.Proxy
}

func (p *darwinProc) wait() (*Result, error) {
	res, err := p.finish()
	if res == nil {
		return nil, err
	}
	if p.proxy != nil {
		for _, c := range p.proxy.Log() {
			res.Connections = append(res.Connections, Connection{Host: c.Name, IP: c.IP, Port: c.Port,
				Allowed: c.Allowed, Reason: c.Reason, BytesOut: c.BytesOut, BytesIn: c.BytesIn})
		}
	}
	for _, d := range collectDenials(p.tag, p.began) {
		res.Denials = append(res.Denials, Denial{Kind: "seatbelt", Name: d.Op, Count: d.Count, Detail: d.Path})
	}
	return res, nil
}

// collectDenials asks the unified log for this run's tagged denials. It is
// best effort: the log may lag, need privileges or be slow, so it is
// bounded and any failure yields nothing.
func collectDenials(tag string, since time.Time) []darwin.Denial {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, darwin.LogPath, darwin.LogShowArgs(tag, since)...).Output()
	if err != nil && len(out) == 0 {
		return nil
	}
	return darwin.ParseLog(bytes.NewReader(out), tag)
}

// checkProfile runs /usr/bin/true under the profile once per profile text.
func checkProfile(prof darwin.Profile) error {
	if _, ok := checkedProfiles.Load(prof.Text); ok {
		return nil
	}
	out, err := exec.Command(darwin.SandboxExec, prof.Args([]string{"/usr/bin/true"})...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	checkedProfiles.Store(prof.Text, true)
	return nil
}

// ttyPaths finds the device paths of the terminals among stdio, the way
// ttyname does: by matching device numbers in /dev.
func ttyPaths(stdio [3]*os.File) []string {
	want := map[uint64]bool{}
	for _, f := range stdio {
		if f == nil {
			continue
		}
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				want[uint64(st.Rdev)] = true
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	ents, _ := os.ReadDir("/dev")
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "tty") || e.Name() == "tty" {
			continue
		}
		p := "/dev/" + e.Name()
		if fi, err := os.Stat(p); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && want[uint64(st.Rdev)] {
				out = append(out, p)
			}
		}
	}
	return out
}

func runTag() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func probe() Features {
	f := Features{OS: "darwin"}
	_, err := os.Stat(darwin.SandboxExec)
	f.Items = append(f.Items,
		Feature{Name: "seatbelt", Available: err == nil, Detail: darwin.SandboxExec,
			Lost: "all file, network and IPC confinement"},
		Feature{Name: "rlimits", Available: darwin.LauncherInstalled(), Detail: "cpu time, file size, open files, stack, no core",
			Lost: "cpu-time, file-size and open-files limits", Fix: "call the airlock launcher hook first thing in main"},
		Feature{Name: "process-group", Available: true, Detail: "kill(-pgid); setsid escapes it"},
		Feature{Name: "memory-limit", Available: false, Lost: "memory limits", Detail: "macOS cannot limit a process tree's memory"},
		Feature{Name: "process-limit", Available: false, Lost: "process counts above 1", Detail: "only process-fork deny (procs=1)"},
	)
	return f
}

func launchPlan(l *launch) (string, error) { return "", ErrUnsupported }
