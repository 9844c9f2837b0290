package airlock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/airlock-sandbox/airlock/internal/cgroup"
	"github.com/airlock-sandbox/airlock/internal/landlock"
	"github.com/airlock-sandbox/airlock/internal/linux"
	"github.com/airlock-sandbox/airlock/internal/netproxy"
	"github.com/airlock-sandbox/airlock/internal/seccomp"
	"golang.org/x/sys/unix"
)

type linuxProcess struct {
	p         *linux.Process
	start     time.Time
	report    Report
	stopServe context.CancelFunc
	served    chan struct{}
	mu        sync.Mutex
	denials   map[string]*Denial
	order     []string
	onDenial  func(Denial)
	cg        *cgroup.Group
	exited    chan struct{}
	cpuTimer  *time.Timer // watchCPU's next check (under mu)
	limitHit  Status
	policy    Policy
	egress    *egress
}

func (lp *linuxProcess) kill() {
	lp.p.Kill()
	if lp.cg != nil {
		lp.cg.Kill()
	}
}

func (lp *linuxProcess) wait() (*Result, error) {
	ex, err := lp.p.Wait()
	close(lp.exited)
	lp.mu.Lock()
	if lp.cpuTimer != nil {
		lp.cpuTimer.Stop()
	}
	lp.mu.Unlock()
	res := &Result{WallTime: time.Since(lp.start), Enforced: lp.report}
	if lp.egress != nil {
		res.Connections = lp.egress.close()
	}
	st := ex.Cgroup // read by Wait once the group emptied; it is removed
	if lp.served != nil {
		lp.stopServe()
		<-lp.served
		lp.mu.Lock()
		for _, n := range lp.order {
			res.Denials = append(res.Denials, *lp.denials[n])
		}
		lp.mu.Unlock()
	}
	if err != nil {
		return res, &SetupError{Stage: "wait", Err: err}
	}
	res.CPUTime = time.Duration(ex.Rusage.Utime.Nano() + ex.Rusage.Stime.Nano())
	res.MemoryPeak = uint64(ex.Rusage.Maxrss) * 1024
	ws := ex.Status
	switch {
	case !ex.Reported:
		res.Status, res.Signal, res.ExitCode = Signaled, "SIGKILL", 128+9
	case ws.Exited():
		res.ExitCode = ws.ExitStatus()
		res.Status = OK
		if res.ExitCode != 0 {
			res.Status = NonZeroExit
		}
	case ws.Signaled():
		sig := int(ws.Signal())
		res.Signal = SignalName(sig)
		res.ExitCode = 128 + sig
		res.Status = Signaled
	}
	// The cgroup's figures are exact where it has them; the rusage of the
	// init (all reaped descendants included) covers the rest.
	if st.CPUTime > 0 {
		res.CPUTime = st.CPUTime
	}
	if st.MemoryPeak > 0 {
		res.MemoryPeak = st.MemoryPeak
	}
	res.ProcsPeak = st.PidsPeak
	lp.mu.Lock()
	hit := lp.limitHit
	lp.mu.Unlock()
	// Verdicts from the kernel's evidence, most specific first.
	switch {
	case hit != "":
		res.Status = hit
	case st.OOMKilled:
		res.Status = MemoryLimit
	case res.Signal == "SIGXCPU" || (res.Signal == "SIGKILL" && lp.policy.Limits.CPUTime > 0 && res.CPUTime >= lp.policy.Limits.CPUTime-cpuKillSlack(lp.policy.Limits.CPUTime)):
		res.Status = TimeLimit
	case res.Signal == "SIGXFSZ":
		res.Status = FileSizeLimit
	case res.Signal == "SIGSYS" && lp.policy.Syscalls.Preset == "strict":
		res.Status = Violation
	case st.PidsMaxHit && res.Status != OK:
		res.Status = ProcessLimit
	}
	return res, nil
}

// linuxSpec translates a launch into the launcher's terms.
func linuxSpec(l *launch, filter *filterFunc) (*linux.Spec, Report, error) {
	p := l.Policy
	var rep Report
	spec := &linux.Spec{
		Path: l.Path, Args: l.Args, Env: l.Env, Dir: l.Dir, Hostname: p.Hostname,
		HostUID: p.Linux.HostUID, HostGID: p.Linux.HostGID,
	}
	if spec.Hostname == "" {
		spec.Hostname = "airlock"
	}
	for i, f := range l.Stdio {
		spec.Stdio[i] = int(f.Fd())
	}
	if t := l.Terminal; t != nil {
		spec.Terminal = &linux.Terminal{Slots: t.slots, Rows: t.rows, Cols: t.cols}
	}
	hasPasswd := false
	for _, m := range p.Mounts {
		lm := linux.Mount{Source: m.Source, Dest: m.Dest, Writable: m.Writable, Size: m.Size, Data: m.Data}
		switch m.Kind {
		case Bind:
			lm.Kind = linux.Bind
			if _, err := os.Stat(m.Source); err != nil {
				if m.Optional && errors.Is(err, os.ErrNotExist) {
					continue
				}
				return nil, nil, &SetupError{Stage: "mount " + m.Dest, Err: err}
			}
		case TmpfsMount:
			lm.Kind = linux.Tmpfs
			if lm.Size == 0 {
				lm.Size = p.Limits.TmpfsSize
			}
		case Symlink:
			lm.Kind = linux.Symlink
		case File:
			lm.Kind = linux.File
		}
		if m.Dest == "/etc/passwd" || m.Dest == "/etc/group" {
			hasPasswd = true
		}
		spec.Mounts = append(spec.Mounts, lm)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = orDefault(p.Linux.HostUID, 65534), orDefault(p.Linux.HostGID, 65534)
	}
	if !hasPasswd {
		home := "/"
		for _, kv := range l.Env {
			if v, ok := strings.CutPrefix(kv, "HOME="); ok {
				home = v
			}
		}
		user := "sandbox"
		spec.Mounts = append(spec.Mounts,
			linux.Mount{Kind: linux.File, Dest: "/etc/passwd", Data: []byte(fmt.Sprintf(
				"root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d:airlock sandbox:%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", user, uid, gid, home))},
			linux.Mount{Kind: linux.File, Dest: "/etc/group", Data: []byte(fmt.Sprintf(
				"root:x:0:\n%s:x:%d:\nnogroup:x:65534:\n", user, gid))})
	}
	switch p.Network.Mode {
	case NetHost:
		spec.ShareNet = true
		rep.add("network", "host network namespace shared", Off, "--net host: the sandbox has the host's network")
	case NetAllow:
		rep.add("network", "own network namespace; TCP captured (nftables) and DNS answered by the broker, which connects only to allowed hosts", Enforced,
			"allowed: "+strings.Join(p.Network.Allow, ","))
		spec.Env = append(append([]string(nil), spec.Env...), netproxy.ProxyEnv()...)
	default:
		detail := ""
		if len(p.Network.Forward)+len(p.Network.Publish) > 0 {
			detail = fmt.Sprintf("forwarded in: %v; published out: %v", p.Network.Forward, p.Network.Publish)
		}
		rep.add("network", "network namespace (loopback only)", Enforced, detail)
	}
	rep.add("filesystem", "mount namespace, tmpfs root, read-only binds, pivot_root", Enforced, "")
	rep.add("processes", "pid namespace, fresh /proc", Enforced, "")
	rep.add("ipc", "ipc namespace, private /dev/shm", Enforced, "")
	rep.add("privileges", "user namespace, all capabilities dropped, no_new_privs", Enforced, "")
	if os.Geteuid() == 0 {
		rep.add("identity", fmt.Sprintf("sandbox user mapped to host uid %d", uid), Enforced, "")
	} else {
		rep.add("identity", fmt.Sprintf("sandbox user mapped to invoking uid %d", uid), Enforced, "")
	}
	rep.add("terminal", "new session (setsid)", Enforced, "")
	rep.add("fds", "close-on-exec for every fd but stdio", Enforced, "")
	rep.add("environment", "explicit environment", Enforced, "")
	spec.Rlimits = append(spec.Rlimits, linux.Rlimit{Resource: unix.RLIMIT_CORE})
	if err := addWalls(spec, &rep, p, filter); err != nil {
		return nil, nil, err
	}
	return spec, rep, nil
}

// addWalls adds the second wall: Landlock in the init and seccomp in the
// target, so one bug in the namespaces or mounts is not an escape.
func addWalls(spec *linux.Spec, rep *Report, p Policy, filter *filterFunc) error {
	// A missing Landlock is reported, not fatal (the first wall still
	// holds), unless the policy requires it.
	strict := p.requires("landlock")
	notify := p.Syscalls.Preset != "strict"
	f, insns, err := compiledFilter(p.Syscalls, notify)
	if err != nil {
		return &SetupError{Stage: "seccomp", Err: err}
	}
	spec.Seccomp, spec.SeccompNotify = insns, notify
	*filter = f
	rep.add("syscalls", "seccomp-bpf preset "+p.Syscalls.Preset, Enforced, "")
	if notify {
		rep.add("denial log", "seccomp user notification", Enforced,
			"lists denied syscalls; file accesses refused by Landlock or the mount view (EACCES, EROFS, ENOENT) are not visible to seccomp and are not listed")
	}

	abi, err := landlockABI()
	if err != nil || abi == 0 {
		if strict {
			return &SetupError{Stage: "landlock", Err: fmt.Errorf("%w: Landlock is unavailable on this kernel (%v) and the policy requires it", ErrNotEnforceable, err)}
		}
		rep.add("landlock", "Landlock", Off, fmt.Sprintf("unavailable: %v", err))
		return nil
	}
	req := landlock.Request{ReadOnly: []string{"/"}, ReadWrite: []string{"/dev"},
		ScopeSignals: true, ScopeAbstractUnix: p.Network.Mode != NetHost,
		RestrictNet: p.Network.Mode == NetNone}
	if req.RestrictNet {
		req.ConnectTCP, req.BindTCP = netPorts(p.Network)
	}
	for _, m := range spec.Mounts {
		if m.Writable && (m.Kind == linux.Bind || m.Kind == linux.Tmpfs) {
			req.ReadWrite = append(req.ReadWrite, m.Dest)
		}
	}
	rs, downs, err := landlock.Plan(req, abi)
	if err != nil {
		return &SetupError{Stage: "landlock", Err: err}
	}
	var weak []string
	for _, d := range downs {
		if d.Weakens {
			weak = append(weak, d.String())
		}
	}
	if len(weak) > 0 && strict {
		return &SetupError{Stage: "landlock", Err: fmt.Errorf("%w: %s, and the policy requires landlock", ErrNotEnforceable, strings.Join(weak, "; "))}
	}
	prep, err := rs.Prepare()
	if err != nil {
		return &SetupError{Stage: "landlock", Err: err}
	}
	spec.Landlock = prep
	state, detail := Enforced, ""
	if len(weak) > 0 {
		state, detail = Degraded, strings.Join(weak, "; ")
	}
	rep.add("landlock", fmt.Sprintf("Landlock ABI %d: filesystem, signal and abstract-socket scoping", abi), state, detail)
	return nil
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

func start(l *launch) (process, error) {
	var filter filterFunc
	spec, rep, err := linuxSpec(l, &filter)
	if err != nil {
		return nil, err
	}
	if err := limits(spec, &rep, l.Policy); err != nil {
		return nil, err
	}
	eg, err := newEgress(l.Policy.Network, l.OnConnection)
	if err != nil {
		return nil, err
	}
	// Nothing per-run but the cgroup happens before release, so a sandbox
	// prepared ahead may serve this run.
	spec.Warm = eg == nil
	var hooks linux.Hooks
	if eg != nil {
		hooks.BeforeRelease = eg.setup
	}
	t0 := time.Now()
	p, err := linux.Start(spec, hooks)
	runtime.KeepAlive(l.Stdio)
	if err != nil {
		if eg != nil {
			eg.close()
		}
		var se *linux.StageError
		var ae *SetupError
		if errors.As(err, &ae) {
			return nil, ae
		}
		if errors.As(err, &se) {
			return nil, &SetupError{Stage: se.Stage, Err: se.Err}
		}
		return nil, &SetupError{Stage: "start", Err: err}
	}
	if l.Terminal != nil {
		l.Terminal.master = p.Terminal
	}
	lp := &linuxProcess{p: p, start: t0, report: rep, denials: map[string]*Denial{},
		exited: make(chan struct{}), policy: l.Policy, onDenial: l.OnDenial, egress: eg, cg: p.Cgroup}
	if lp.cg != nil && l.Policy.Limits.CPUTime > 0 {
		lp.watchCPU(l.Policy.Limits.CPUTime)
	}
	if p.Listener >= 0 {
		ctx, cancel := context.WithCancel(context.Background())
		lp.stopServe = cancel
		lp.served = make(chan struct{})
		go func() {
			defer close(lp.served)
			// With a precompiled program, the Filter is built at the first
			// denial; the denied call waits in the kernel until answered.
			seccomp.ServeContext(ctx, p.Listener, filter, runtime.GOARCH, lp.onDeny)
		}()
	}
	return lp, nil
}

// onDeny counts a denied syscall; the first call's arguments are kept.
func (lp *linuxProcess) onDeny(name string, args [6]uint64) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	d := lp.denials[name]
	if d == nil {
		d = &Denial{Kind: "syscall", Name: name, Detail: fmt.Sprintf("first args %#x %#x %#x", args[0], args[1], args[2])}
		lp.denials[name] = d
		lp.order = append(lp.order, name)
	}
	d.Count++
	if lp.onDenial != nil {
		lp.onDenial(*d)
	}
}

// filterFunc returns the Filter a compiled program came from (to answer
// and name denials).
type filterFunc = func() (*seccomp.Filter, error)

// notifyQuiet: glibc probes clone3 on every thread start; keep that ENOSYS
// out of the denial log.
var notifyQuiet = []string{"clone3"}

func compiledFilter(sp SyscallPolicy, notify bool) (filterFunc, []seccomp.SockFilter, error) {
	return seccomp.Build(sp.Preset, sp.Allow, sp.Deny, notify, notifyQuiet, runtime.GOARCH)
}

// launchPlan compiles l into the Linux launcher's system-call list.
func launchPlan(l *launch) (string, error) {
	var filter filterFunc
	spec, _, err := linuxSpec(l, &filter)
	if err != nil {
		return "", err
	}
	return linux.Plan(spec)
}
