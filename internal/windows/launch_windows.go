package windows

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	xwin "golang.org/x/sys/windows"
)

// Command is the program to start.
type Command struct {
	// Path is the resolved program (see LookPath).
	Path  string
	Args  []string
	Env   []string
	Dir   string
	Stdio [3]*os.File
}

// Outcome is what a finished run reports.
type Outcome struct {
	ExitCode       uint32
	Status, Signal string
	CPUTime        time.Duration
	MemoryPeak     uint64
	Procs          int
	Report         []Protection
	// CleanupErr is set when undoing the sandbox (grants, profile,
	// desktop) failed after the run; the journal retries grants later.
	CleanupErr error
}

// Process is a started sandbox.
type Process struct {
	mu       sync.Mutex
	job      xwin.Handle
	proc     xwin.Handle
	port     xwin.Handle
	ev       Evidence
	killed   bool
	reaping  bool
	jobTime  int64 // the plan's user-time limit, 100 ns units
	userTime int64
	zero     chan struct{}
	report   []Protection
	undo     []func() error
	waitOnce sync.Once
	out      *Outcome
	err      error
}

const portKey = 1

// Start builds the sandbox the plan describes and starts cmd in it,
// suspended until it is inside the job. j journals file grants; it is
// repaired first so grants left by a crashed broker are undone.
func Start(plan *Plan, cmd Command, j *Journal) (_ *Process, err error) {
	p := &Process{zero: make(chan struct{}), jobTime: plan.Job.JobUserTime100}
	if j != nil {
		if _, err := j.Repair(); err != nil {
			return nil, fmt.Errorf("repair grants left by an earlier run: %w", err)
		}
	}
	defer func() {
		if err != nil {
			p.cleanup()
		}
	}()
	var (
		ac    *container
		token xwin.Token
	)
	ac, acErr := newContainer()
	if acErr != nil {
		if err := plan.Fallback(acErr.Error()); err != nil {
			return nil, err
		}
		p.report = append([]Protection(nil), plan.FallbackReport...)
		if token, err = lowToken(); err != nil {
			return nil, fmt.Errorf("restricted token fallback: %w", err)
		}
		p.undo = append(p.undo, func() error { return token.Close() })
	} else {
		p.report = append([]Protection(nil), plan.Report...)
		p.undo = append(p.undo, ac.delete)
		if err := p.grant(plan, j, ac.sid.String()); err != nil {
			return nil, err
		}
	}

	if err := p.newJob(plan); err != nil {
		return nil, err
	}

	si := new(xwin.StartupInfoEx)
	si.Cb = uint32(unsafe.Sizeof(*si))
	if plan.Desktop {
		acs := ""
		if ac != nil {
			acs = ac.sid.String()
		}
		name, h, derr := newDesktop(acs)
		if derr != nil {
			if err := plan.Degrade(&p.report, "ui", "job UI restrictions only; no alternate desktop: "+derr.Error()); err != nil {
				return nil, err
			}
		} else {
			p.undo = append(p.undo, func() error { closeDesktop(h); return nil })
			si.Desktop = utf16Ptr(name)
		}
	}

	// Attributes: handle list, AppContainer, mitigations, child policy.
	attrs, err := xwin.NewProcThreadAttributeList(4)
	if err != nil {
		return nil, err
	}
	defer attrs.Delete()
	var caps []xwin.SIDAndAttributes
	var sc securityCapabilities
	if ac != nil {
		if caps, err = capabilities(plan.Capabilities); err != nil {
			return nil, err
		}
		sc.AppContainerSid = ac.sid
		sc.CapabilityCount = uint32(len(caps))
		if len(caps) > 0 {
			sc.Capabilities = &caps[0]
		}
		if err := attrs.Update(procThreadAttrSecurityCaps, unsafe.Pointer(&sc), unsafe.Sizeof(sc)); err != nil {
			return nil, fmt.Errorf("AppContainer attribute: %w", err)
		}
	}
	mit := plan.Mitigations
	if err := attrs.Update(xwin.PROC_THREAD_ATTRIBUTE_MITIGATION_POLICY, unsafe.Pointer(&mit), unsafe.Sizeof(mit)); err != nil {
		if err := plan.Degrade(&p.report, "mitigations", err.Error()); err != nil {
			return nil, err
		}
	}
	child := childProcessRestricted
	if plan.NoChildren {
		if err := attrs.Update(procThreadAttrChildPolicy, unsafe.Pointer(&child), unsafe.Sizeof(child)); err != nil {
			if err := plan.Degrade(&p.report, "processes", "child process policy: "+err.Error()); err != nil {
				return nil, err
			}
		}
	}

	line, err := CommandLine(cmd.Args)
	if err != nil {
		return nil, err
	}
	env, err := EnvBlock(cmd.Env)
	if err != nil {
		return nil, err
	}
	var pi xwin.ProcessInformation
	err = func() error {
		// Inheritable copies of the stdio handles exist only while
		// CreateProcess runs, and only they are in the handle list.
		syscall.ForkLock.Lock()
		defer syscall.ForkLock.Unlock()
		self := xwin.CurrentProcess()
		var std [3]xwin.Handle
		var list []xwin.Handle
		for i, f := range cmd.Stdio {
			if f == nil {
				continue
			}
			src := xwin.Handle(f.Fd())
			for k := 0; k < i; k++ {
				if cmd.Stdio[k] == f {
					std[i] = std[k]
				}
			}
			if std[i] != 0 {
				continue
			}
			if err := xwin.DuplicateHandle(self, src, self, &std[i], 0, true, xwin.DUPLICATE_SAME_ACCESS); err != nil {
				return fmt.Errorf("stdio %d: %w", i, err)
			}
			list = append(list, std[i])
		}
		defer func() {
			for _, h := range list {
				xwin.CloseHandle(h)
			}
		}()
		if len(list) > 0 {
			if err := attrs.Update(xwin.PROC_THREAD_ATTRIBUTE_HANDLE_LIST, unsafe.Pointer(&list[0]), uintptr(len(list))*unsafe.Sizeof(list[0])); err != nil {
				return fmt.Errorf("handle list: %w", err)
			}
		}
		si.Flags |= xwin.STARTF_USESTDHANDLES
		si.StdInput, si.StdOutput, si.StdErr = std[0], std[1], std[2]
		si.ProcThreadAttributeList = attrs.List()
		flags := uint32(xwin.CREATE_SUSPENDED | xwin.EXTENDED_STARTUPINFO_PRESENT | xwin.CREATE_UNICODE_ENVIRONMENT |
			xwin.CREATE_DEFAULT_ERROR_MODE)
		if plan.NoChildren {
			flags |= xwin.DETACHED_PROCESS
		} else {
			flags |= xwin.CREATE_NO_WINDOW
		}
		app, cl, dir := utf16Ptr(cmd.Path), utf16Ptr(line), utf16Ptr(cmd.Dir)
		if cmd.Dir == "" {
			dir = nil
		}
		var err error
		if token != 0 {
			err = xwin.CreateProcessAsUser(token, app, cl, nil, nil, len(list) > 0, flags, &env[0], dir, &si.StartupInfo, &pi)
		} else {
			err = xwin.CreateProcess(app, cl, nil, nil, len(list) > 0, flags, &env[0], dir, &si.StartupInfo, &pi)
		}
		runtime.KeepAlive(caps)
		runtime.KeepAlive(&sc)
		runtime.KeepAlive(&mit)
		runtime.KeepAlive(&child)
		return err
	}()
	if err != nil {
		return nil, fmt.Errorf("CreateProcess %s: %w", cmd.Path, err)
	}
	p.proc = pi.Process
	defer xwin.CloseHandle(pi.Thread)
	if err := xwin.AssignProcessToJobObject(p.job, pi.Process); err != nil {
		xwin.TerminateProcess(pi.Process, 1)
		return nil, fmt.Errorf("assign to job: %w", err)
	}
	if !inJob(pi.Process, p.job) {
		// A suspended process that ended on its own (its loader failed)
		// leaves the job too; say which it was.
		var code uint32
		ended := xwin.GetExitCodeProcess(pi.Process, &code) == nil && code != 259 // STILL_ACTIVE
		xwin.TerminateProcess(pi.Process, 1)
		if ended {
			return nil, fmt.Errorf("the process ended before it was resumed (exit code %#x); it is not in the sandbox job", code)
		}
		return nil, errors.New("the process is not in the sandbox job")
	}
	if _, err := xwin.ResumeThread(pi.Thread); err != nil {
		xwin.TerminateProcess(pi.Process, 1)
		return nil, fmt.Errorf("resume: %w", err)
	}
	go p.watch(p.port)
	return p, nil
}

// inJob double-checks the assignment where IsProcessInJob exists.
func inJob(proc, job xwin.Handle) bool {
	var in int32
	r, _ := call(procIsProcessInJob, uintptr(proc), uintptr(job), uintptr(unsafe.Pointer(&in)))
	return r == 0 || in != 0 // r == 0: call failed or missing; the assignment already succeeded
}

// grant adds the plan's ACEs for sid, journaled.
func (p *Process) grant(plan *Plan, j *Journal, sid string) error {
	if len(plan.Grants) == 0 {
		return nil
	}
	if j == nil {
		return errors.New("file grants need a journal")
	}
	for _, g := range plan.Grants {
		fi, err := os.Stat(g.Path)
		if err != nil {
			if g.Optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("grant %s: %w", g.Path, err)
		}
		r, err := j.Grant(g.Path, sid, g.Access, fi.IsDir())
		if err != nil {
			return err
		}
		p.undo = append(p.undo, func() error { return j.Revoke(r) })
	}
	return nil
}

// newJob creates the job with the plan's limits and a completion port.
func (p *Process) newJob(plan *Plan) error {
	job, err := xwin.CreateJobObject(nil, nil)
	if err != nil {
		return fmt.Errorf("CreateJobObject: %w", err)
	}
	p.job = job
	var ext xwin.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	b := &ext.BasicLimitInformation
	b.LimitFlags = plan.Job.LimitFlags
	b.ActiveProcessLimit = plan.Job.ActiveProcs
	b.PerJobUserTimeLimit = plan.Job.JobUserTime100
	ext.JobMemoryLimit = uintptr(plan.Job.JobMemory)
	if err := setJobInfo(job, xwin.JobObjectExtendedLimitInformation, unsafe.Pointer(&ext), unsafe.Sizeof(ext)); err != nil {
		return fmt.Errorf("job limits: %w", err)
	}
	ui := xwin.JOBOBJECT_BASIC_UI_RESTRICTIONS{UIRestrictionsClass: plan.Job.UIRestrictions}
	if err := setJobInfo(job, xwin.JobObjectBasicUIRestrictions, unsafe.Pointer(&ui), unsafe.Sizeof(ui)); err != nil {
		if err := plan.Degrade(&p.report, "ui", "job UI restrictions refused: "+err.Error()); err != nil {
			return err
		}
	}
	if plan.Job.CPURate > 0 {
		r := jobCPURate{ControlFlags: CPURateEnable | CPURateHardCap, CPURate: plan.Job.CPURate}
		if err := setJobInfo(job, jobObjectCPURateControlInfo, unsafe.Pointer(&r), unsafe.Sizeof(r)); err != nil {
			if err := plan.Degrade(&p.report, "cpu", "CPU rate control refused: "+err.Error()); err != nil {
				return err
			}
		}
	}
	port, err := xwin.CreateIoCompletionPort(xwin.InvalidHandle, 0, 0, 1)
	if err != nil {
		return fmt.Errorf("completion port: %w", err)
	}
	p.port = port
	assoc := jobAssociateCompletionPort{CompletionKey: portKey, CompletionPort: port}
	if err := setJobInfo(job, xwin.JobObjectAssociateCompletionPortInformation, unsafe.Pointer(&assoc), unsafe.Sizeof(assoc)); err != nil {
		return fmt.Errorf("job notifications: %w", err)
	}
	return nil
}

// watch collects job notifications until the job has no process left.
func (p *Process) watch(port xwin.Handle) {
	defer close(p.zero)
	for {
		var msg uint32
		var key uintptr
		var ov *xwin.Overlapped
		if err := xwin.GetQueuedCompletionStatus(port, &msg, &key, &ov, xwin.INFINITE); err != nil {
			return
		}
		if key != portKey {
			return // posted by cleanup
		}
		p.mu.Lock()
		p.ev.Note(msg)
		p.mu.Unlock()
		if msg == MsgActiveProcessZero {
			return
		}
	}
}

// Kill terminates every process in the job.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.job == 0 {
		return
	}
	if !p.reaping {
		p.killed = true
	}
	xwin.TerminateJobObject(p.job, 1)
}

// Wait waits for the program, then ends the rest of the tree (as on Linux
// when the sandbox's first process exits), collects the job's accounting
// and undoes the sandbox.
func (p *Process) Wait() (*Outcome, error) {
	p.waitOnce.Do(func() { p.out, p.err = p.wait() })
	return p.out, p.err
}

func (p *Process) wait() (*Outcome, error) {
	if _, err := xwin.WaitForSingleObject(p.proc, xwin.INFINITE); err != nil {
		return nil, err
	}
	var code uint32
	if err := xwin.GetExitCodeProcess(p.proc, &code); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.reaping = true
	xwin.TerminateJobObject(p.job, 1)
	p.mu.Unlock()
	select {
	case <-p.zero:
	case <-time.After(10 * time.Second):
		// No notification: fall back to the job's own count.
		for i := 0; i < 100 && p.active() > 0; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	}
	out := &Outcome{ExitCode: code}
	var acct jobBasicAndIOAccounting
	if xwin.QueryInformationJobObject(p.job, xwin.JobObjectBasicAndIoAccountingInformation,
		uintptr(unsafe.Pointer(&acct)), uint32(unsafe.Sizeof(acct)), nil) == nil {
		out.CPUTime = time.Duration(acct.Basic.TotalUserTime+acct.Basic.TotalKernelTime) * 100
		p.userTime = acct.Basic.TotalUserTime
		out.Procs = int(acct.Basic.TotalProcesses)
	}
	var ext xwin.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	if xwin.QueryInformationJobObject(p.job, xwin.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&ext)), uint32(unsafe.Sizeof(ext)), nil) == nil {
		out.MemoryPeak = uint64(ext.PeakJobMemoryUsed)
	}
	p.mu.Lock()
	ev := p.ev
	ev.Killed = p.killed
	p.mu.Unlock()
	// With the default end-of-job-time action Windows terminates the job
	// without a notification; the accounting is the evidence.
	if p.jobTime > 0 && p.userTime >= p.jobTime {
		ev.JobTime = true
	}
	out.Status, out.Signal = Verdict(code, ev)
	out.Report = p.report
	out.CleanupErr = p.cleanup()
	return out, nil
}

func (p *Process) active() uint32 {
	var acct jobBasicAndIOAccounting
	if xwin.QueryInformationJobObject(p.job, xwin.JobObjectBasicAndIoAccountingInformation,
		uintptr(unsafe.Pointer(&acct)), uint32(unsafe.Sizeof(acct)), nil) != nil {
		return 0
	}
	return acct.Basic.ActiveProcesses
}

// cleanup closes the job (kill on close) and undoes grants, desktop and
// profile, newest first.
func (p *Process) cleanup() error {
	p.mu.Lock()
	job, port, proc := p.job, p.port, p.proc
	p.job, p.port, p.proc = 0, 0, 0
	p.mu.Unlock()
	if job != 0 {
		xwin.TerminateJobObject(job, 1)
		xwin.CloseHandle(job)
	}
	if port != 0 {
		xwin.PostQueuedCompletionStatus(port, 0, 0, nil)
		xwin.CloseHandle(port)
	}
	if proc != 0 {
		xwin.CloseHandle(proc)
	}
	var errs []error
	for i := len(p.undo) - 1; i >= 0; i-- {
		if err := p.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	p.undo = nil
	return errors.Join(errs...)
}
