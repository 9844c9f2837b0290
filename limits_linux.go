package airlock

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock/internal/cgroup"
	"github.com/airlock-sandbox/airlock/internal/linux"
)

var cleanStaleOnce sync.Once

// cgroupInfo is what this process may do with cgroups, found once:
// delegation does not change while a broker runs.
var cgroupInfo = sync.OnceValue(func() cgroup.Info { return cgroupDetect() })

// limits applies p.Limits: cgroups for the whole tree where this user can
// create them, rlimits always (per process, as a second wall), and says in
// the report which limit is exact and which approximate.
func limits(spec *linux.Spec, rep *Report, p Policy) error {
	l := p.Limits
	strict := p.Enforce != BestEffort
	rl := func(res int, v uint64) {
		spec.Rlimits = append(spec.Rlimits, linux.Rlimit{Resource: res, Cur: v, Max: v})
	}
	rl(unix.RLIMIT_RTPRIO, 0)
	if l.FileSize > 0 {
		rl(unix.RLIMIT_FSIZE, uint64(l.FileSize))
		rep.add("file size", "RLIMIT_FSIZE", Enforced, "")
	}
	if l.OpenFiles > 0 {
		rl(unix.RLIMIT_NOFILE, uint64(l.OpenFiles))
		rep.add("open files", "RLIMIT_NOFILE", Enforced, "")
	}
	if l.Stack > 0 {
		rl(unix.RLIMIT_STACK, uint64(l.Stack))
		rep.add("stack", "RLIMIT_STACK", Enforced, "")
	}
	if l.Memory <= 0 && l.Procs <= 0 && l.CPUs <= 0 && l.CPUTime <= 0 {
		return nil
	}
	cleanStaleOnce.Do(func() { cgroup.CleanStale() })
	info := cgroupInfo()
	if l.CPUTime > 0 {
		// Per process. Without a cgroup it is the limit itself, hard as
		// well as soft: SIGXCPU can be ignored (Go programs ignore it by
		// default), so a soft limit alone would let a program run on to
		// the hard one. Behind the broker's exact whole-tree check it is a
		// second wall, a second later: the kernel counts it in ticks, which
		// a busy host can overcharge, and a judge must not see TimeLimit
		// below the limit.
		secs := uint64(math.Ceil(l.CPUTime.Seconds()))
		hard := secs
		if info.CanCreate {
			secs++
			hard = secs + 1
		}
		spec.Rlimits = append(spec.Rlimits, linux.Rlimit{Resource: unix.RLIMIT_CPU, Cur: secs, Max: hard})
	}
	if info.CanCreate {
		// The launcher creates the group (ahead of time for a warm
		// sandbox) and places the target in it before it runs.
		spec.Cgroup = &cgroup.Spec{Memory: l.Memory, Pids: int64(l.Procs), CPUs: l.CPUs,
			Minimal: true, CPUAccounting: l.CPUTime > 0}
		v := fmt.Sprintf("cgroup v%d", info.Version)
		if l.Memory > 0 {
			rep.add("memory", v+" memory limit (swap included)", Enforced, "")
		}
		if l.Procs > 0 {
			rep.add("processes", v+" pids limit", Enforced, "")
		}
		if l.CPUs > 0 {
			rep.add("cpu bandwidth", v+" cpu quota", Enforced, "")
		}
		if l.CPUTime > 0 {
			rep.add("cpu time", v+" accounting of the whole tree, checked by the broker; RLIMIT_CPU per process", Enforced, "")
		}
		return nil
	}
	err := fmt.Errorf("%s", info.Reason)
	// No cgroup for this user: rlimits only, each one approximate.
	why := err.Error()
	if l.CPUs > 0 {
		if strict {
			return &SetupError{Stage: "cgroup", Err: fmt.Errorf("%w: --cpus needs a cgroup this user can create (%s); use --best-effort to run without it", ErrNotEnforceable, why)}
		}
		rep.add("cpu bandwidth", "none", Off, "no cgroup: "+why)
	}
	if l.Memory > 0 {
		rl(unix.RLIMIT_AS, uint64(l.Memory))
		rep.add("memory", "RLIMIT_AS per process", Degraded, "no cgroup ("+why+"): address space, not resident memory, and per process, not the whole tree")
	}
	if l.Procs > 0 {
		rl(unix.RLIMIT_NPROC, uint64(l.Procs))
		rep.add("processes", "RLIMIT_NPROC", Degraded, "no cgroup ("+why+"): counts every process of the host user, not just the sandbox's")
	}
	if l.CPUTime > 0 {
		rep.add("cpu time", "RLIMIT_CPU per process", Degraded, "no cgroup ("+why+"): each process gets the full budget")
	}
	return nil
}

// cpuCheckEvery is how often the broker reads the tree's CPU time.
const cpuCheckEvery = 10 * time.Millisecond

// watchCPU kills the tree when the whole tree's CPU time passes limit. The
// checks run from a timer, not a goroutine of the run's own: most runs end
// before the first one, and starting a goroutine wakes a thread.
func (lp *linuxProcess) watchCPU(limit time.Duration) {
	var check func()
	check = func() {
		select {
		case <-lp.exited:
			return
		default:
		}
		if st, err := lp.cg.Stats(); err == nil && st.CPUTime > limit {
			lp.mu.Lock()
			lp.limitHit = TimeLimit
			lp.mu.Unlock()
			lp.kill()
			return
		}
		lp.mu.Lock()
		lp.cpuTimer.Reset(cpuCheckEvery)
		lp.mu.Unlock()
	}
	lp.mu.Lock()
	lp.cpuTimer = time.AfterFunc(cpuCheckEvery, check)
	lp.mu.Unlock()
}
