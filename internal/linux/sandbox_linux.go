package linux

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock/internal/cgroup"
)

// Process is a started sandbox: its init (pid 1 inside) and the target.
type Process struct {
	Pid int
	// Listener is the seccomp user-notification fd (-1 without notify);
	// the caller serves and closes it.
	Listener int
	// afterWait runs once the sandbox is gone (prepares the next one).
	afterWait func()
	// Cgroup is the target's group (nil without Spec.Cgroup); Wait reads
	// its accounting and removes it.
	Cgroup *cgroup.Group
	// closeLater is the group reap removes (set by Wait before reap runs).
	closeLater *cgroup.Group
	// Terminal is the master of the target's terminal (nil without
	// Spec.Terminal); the caller relays it and closes it.
	Terminal *os.File
	pidfd    int
	statusR  int
	killOnce sync.Once
	mu       sync.Mutex
	done     bool
}

// Exit is what the kernel reported about the target.
type Exit struct {
	// Status is the target's wait status; Reported is false when the init
	// died before reporting it (the tree was killed from outside).
	Status   unix.WaitStatus
	Reported bool
	// Rusage of the whole tree: the init's, which includes every reaped
	// descendant.
	Rusage unix.Rusage
	// Cgroup is the group's accounting, read once the group emptied (zero
	// without Process.Cgroup); the group is removed by then.
	Cgroup cgroup.Stats
}

// Hooks run in the broker while the child waits, after its id maps are
// written and before it builds the sandbox.
type Hooks struct {
	// BeforeRelease runs with the child's pid; an error aborts the launch.
	BeforeRelease func(pid int) error
}

// forker runs every fork on one OS thread that never exits: the child's
// parent-death signal fires when the forking thread ends, not the process.
var forker struct {
	once sync.Once
	reqs chan func()
}

func onForkerThread(f func()) {
	forker.once.Do(func() {
		forker.reqs = make(chan func())
		go func() {
			runtime.LockOSThread()
			for f := range forker.reqs {
				f()
			}
		}()
	})
	done := make(chan struct{})
	forker.reqs <- func() { f(); close(done) }
	<-done
}

// Start builds the sandbox described by spec and starts the target in it.
// It returns when the target has been exec'd, or with a *StageError.
func Start(spec *Spec, hooks Hooks) (*Process, error) {
	w, next := takeWarm(spec)
	var pg *pendingGroup
	if w == nil || w.cg == nil {
		pg = makeGroup(spec.Cgroup)
	}
	if w != nil {
		if p, err := w.run(spec, hooks, pg); err == nil {
			p.afterWait = next
			return p, nil
		}
		// A warm sandbox that failed is gone; build a fresh one, which
		// reports the failure properly if it is not particular to it.
		if pg == nil {
			pg = makeGroup(spec.Cgroup)
		}
	}
	p, err := startCold(spec, hooks, pg)
	if err != nil {
		if next != nil {
			next()
		}
		return nil, err
	}
	p.afterWait = next
	return p, nil
}

// pendingGroup is the run's cgroup, made beside the rest of the launch.
type pendingGroup struct {
	spec  cgroup.Spec
	done  chan struct{}
	g     *cgroup.Group
	err   error
	taken bool
}

func makeGroup(spec *cgroup.Spec) *pendingGroup {
	if spec == nil {
		return nil
	}
	pg := &pendingGroup{spec: *spec, done: make(chan struct{})}
	go func() {
		pg.g, pg.err = cgroup.New(pg.spec)
		close(pg.done)
	}()
	return pg
}

// take returns the group (nil without one). A second take, after an
// attempt that used the first, makes a fresh one: a failed attempt's
// usage must not count.
func (pg *pendingGroup) take() (*cgroup.Group, error) {
	if pg == nil {
		return nil, nil
	}
	<-pg.done
	if pg.taken {
		return cgroup.New(pg.spec)
	}
	pg.taken = true
	return pg.g, pg.err
}

func startCold(spec *Spec, hooks Hooks, pg *pendingGroup) (*Process, error) {
	var join []int
	g, err := pg.take()
	if err != nil {
		return nil, &StageError{Stage: "cgroup", Err: err}
	}
	if g != nil {
		if join, err = joinFiles(g); err != nil {
			g.Close()
			return nil, &StageError{Stage: "cgroup", Err: err}
		}
		defer closeFds(join)
	}
	pl, err := buildPlan(spec, nil, join)
	if err == nil {
		var p *Process
		if p, err = pl.start(hooks); err == nil {
			p.Cgroup = g
			return p, nil
		}
	}
	if g != nil {
		g.Close()
	}
	return nil, err
}

// joinFiles is g.JoinFiles above stdio: the broker may run with a closed
// stdin, and the init's stdio lands on 0..2 before the target joins.
func joinFiles(g *cgroup.Group) ([]int, error) {
	fds, err := g.JoinFiles()
	for i := range fds {
		fds[i] = highFd(fds[i])
	}
	return fds, err
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Plan returns the launch plan for spec as text (for --print-plan).
func Plan(spec *Spec) (string, error) {
	pl, err := buildPlan(spec, nil, nil)
	if err != nil {
		return "", err
	}
	defer pl.closeAll()
	return pl.prog.String(), nil
}

// fork clones the child and closes the parent's copies of its pipe ends.
func (pl *plan) fork() (*Process, error) {
	var (
		pid   int
		pidfd int32
		errno syscall.Errno
	)
	syscall.ForkLock.Lock()
	onForkerThread(func() { pid, pidfd, errno = forkRun(&pl.prog, pl.flags, pl.errW, -1) })
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(pl)
	for _, fd := range []int{pl.syncR, pl.errW, pl.statusW, pl.notifyW, pl.ptyW} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	if pl.rq != nil {
		unix.Close(pl.rq.ctlR)
		pl.rq.ctlR = -1
	}
	if errno != 0 {
		unix.Close(pl.syncW)
		unix.Close(pl.errR)
		unix.Close(pl.statusR)
		for _, fd := range []int{pl.notifyR, pl.ptyR} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		if pl.rq != nil {
			pl.rq.close()
		}
		return nil, cloneError(errno, pl.flags)
	}
	return &Process{Pid: pid, pidfd: int(pidfd), statusR: pl.statusR, Listener: -1}, nil
}

func (pl *plan) start(hooks Hooks) (*Process, error) {
	proc, err := pl.fork()
	if err != nil {
		return nil, err
	}
	abort := func(err error) (*Process, error) {
		unix.Close(pl.syncW)
		unix.Close(pl.errR)
		for _, fd := range []int{pl.notifyR, pl.ptyR} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		proc.Kill()
		proc.Wait()
		return nil, err
	}
	if err := pl.writeMaps(proc.Pid); err != nil {
		return abort(err)
	}
	if hooks.BeforeRelease != nil {
		if err := hooks.BeforeRelease(proc.Pid); err != nil {
			return abort(err)
		}
	}
	if _, err := unix.Write(pl.syncW, []byte{1}); err != nil {
		return abort(&StageError{Stage: "sync with sandbox", Err: err})
	}
	unix.Close(pl.syncW)
	return pl.finishStart(proc)
}

// finishStart waits until the target has been exec'd (the error pipe
// closes) or the child reports the stage that failed.
func (pl *plan) finishStart(proc *Process) (*Process, error) {
	for _, fd := range []int{pl.notifyR, pl.ptyR} {
		if fd >= 0 {
			defer unix.Close(fd)
		}
	}
	var fail childFailure
	buf := (*[unsafe.Sizeof(fail)]byte)(unsafe.Pointer(&fail))[:]
	n, err := readFull(pl.errR, buf)
	unix.Close(pl.errR)
	if err != nil || n == 0 {
		// Exec'd: what the target sent before is waiting in the sockets.
		if pl.ptyR >= 0 {
			fd, err := recvFd(pl.ptyR, "terminal")
			if err != nil {
				proc.Kill()
				proc.Wait()
				return nil, &StageError{Stage: "terminal", Err: err}
			}
			proc.Terminal = os.NewFile(uintptr(fd), "ptmx")
		}
		if pl.notifyR >= 0 {
			if proc.Listener, err = recvFd(pl.notifyR, "seccomp listener"); err != nil {
				if proc.Terminal != nil {
					proc.Terminal.Close()
				}
				proc.Kill()
				proc.Wait()
				return nil, &StageError{Stage: "seccomp listener", Err: err}
			}
		}
		return proc, nil
	}
	stage := "setup"
	if int(fail.Op) < len(pl.prog.ops) {
		stage = pl.prog.stages[pl.prog.ops[fail.Op].stage]
	}
	proc.Kill()
	proc.Wait()
	return nil, &StageError{Stage: stage, Err: syscall.Errno(fail.Errno)}
}

func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

func (pl *plan) writeMaps(pid int) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	if err := os.WriteFile(dir+"uid_map", []byte(pl.uidMap), 0); err != nil {
		return &StageError{Stage: "uid map", Err: unwrapPath(err)}
	}
	if err := os.WriteFile(dir+"setgroups", []byte(pl.setgroups), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return &StageError{Stage: "setgroups", Err: unwrapPath(err)}
	}
	if err := os.WriteFile(dir+"gid_map", []byte(pl.gidMap), 0); err != nil {
		return &StageError{Stage: "gid map", Err: unwrapPath(err)}
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// cloneError explains why namespaces could not be created.
func cloneError(errno syscall.Errno, flags uintptr) error {
	err := &StageError{Stage: "create namespaces", Err: errno}
	if errno == syscall.EPERM || errno == syscall.ENOSPC || errno == syscall.EACCES {
		if b, e := os.ReadFile("/proc/sys/user/max_user_namespaces"); e == nil && string(b) == "0\n" {
			err.Err = fmt.Errorf("%w: user namespaces are disabled (user.max_user_namespaces = 0); enable them with: sysctl -w user.max_user_namespaces=15000", errno)
		} else if b, e := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); e == nil && string(b) == "1\n" {
			err.Err = fmt.Errorf("%w: AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1); see `airlock check` for the profile that allows airlock", errno)
		} else if b, e := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); e == nil && string(b) == "0\n" {
			err.Err = fmt.Errorf("%w: unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0); enable with: sysctl -w kernel.unprivileged_userns_clone=1", errno)
		}
	}
	return err
}

// Kill stops the whole sandbox: killing the init ends its pid namespace.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	if p.pidfd >= 0 {
		unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0)
	} else {
		unix.Kill(p.Pid, unix.SIGKILL)
	}
}

// Wait reaps the init and returns the target's status.
func (p *Process) Wait() (Exit, error) {
	var ex Exit
	var rep struct {
		ws uint64
		ru unix.Rusage
	}
	// The init reports the target's status and rusage the moment the target
	// exits, then exits itself, which kills what is left of the tree.
	buf := (*[unsafe.Sizeof(rep)]byte)(unsafe.Pointer(&rep))[:]
	n, _ := readFull(p.statusR, buf)
	unix.Close(p.statusR)
	if n == len(buf) {
		// The verdict is known; the namespaces' teardown need not delay
		// the caller. Everything left is killed now and reaped behind.
		p.Kill()
		ex.Status, ex.Reported, ex.Rusage = unix.WaitStatus(uint32(rep.ws)), true, rep.ru
		if rep.ws>>32 == 1 && p.Cgroup != nil {
			// Only the target's tree joins the group, and it is gone.
			p.Cgroup.MarkEmpty()
		}
		ex.Cgroup = p.closeCgroup(true)
		go p.reap(nil)
		return ex, nil
	}
	// Without a report (the tree was killed from outside): reap first.
	var ws unix.WaitStatus
	err := p.reap(&ex.Rusage, &ws)
	ex.Cgroup = p.closeCgroup(false)
	if err != nil {
		return ex, err
	}
	if n >= 8 {
		ex.Status = unix.WaitStatus(uint32(rep.ws))
		ex.Reported = true
	} else {
		ex.Status = ws
	}
	return ex, nil
}

// closeCgroup waits until the group is empty (its tasks leave it as they
// exit), reads its final accounting and removes it: at once, or with later
// and a janitor running, once reap has reaped the init.
func (p *Process) closeCgroup(later bool) cgroup.Stats {
	if p.Cgroup == nil {
		return cgroup.Stats{}
	}
	if !p.Cgroup.Empty() {
		p.Cgroup.Kill()
	}
	st, _ := p.Cgroup.Stats()
	if later && cgroup.JanitorRunning() {
		// Removed behind the caller's back, once the init is reaped; the
		// janitor removes it if the broker ends first.
		p.closeLater = p.Cgroup
	} else {
		p.Cgroup.Close()
	}
	return st
}

// reap waits for the init, then lets the next warm sandbox be made.
func (p *Process) reap(ru *unix.Rusage, ws ...*unix.WaitStatus) error {
	var status unix.WaitStatus
	var err error
	for {
		_, err = unix.Wait4(p.Pid, &status, 0, ru)
		if err != unix.EINTR {
			break
		}
	}
	p.mu.Lock()
	p.done = true
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
	next := p.afterWait
	p.afterWait = nil
	p.mu.Unlock()
	if next != nil {
		next()
	}
	if p.closeLater != nil {
		p.closeLater.Close()
		p.closeLater = nil
	}
	if len(ws) > 0 {
		*ws[0] = status
	}
	return err
}
