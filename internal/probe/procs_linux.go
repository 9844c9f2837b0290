package probe

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	register("C1", "c", "signals to outside processes", probeC1)
	register("C2", "c", "ptrace / process_vm / pidfd_getfd on outside processes", probeC2)
	register("C5", "c", "processes outliving the box", probeC5)
	register("C6", "c", "scheduling and limits of outside processes", probeC6)
	register("C7", "c", "host clock and time namespace", probeC7)
	helpers["sleeper"] = func(rest []string, _ map[string]string) int {
		// Bounded: even if nothing kills it, it is gone in 30 seconds.
		time.Sleep(30 * time.Second)
		return 0
	}
}

func victimPid(p *run) int {
	v, _ := strconv.Atoi(p.arg("victim"))
	return v
}

// probeC1 signals VICTIM by every route, each with its own signal so the
// victim's record tells which route worked.
func probeC1(p *run) {
	v := victimPid(p)
	if p.step("kill(VICTIM, SIGUSR1)", unix.Kill(v, unix.SIGUSR1)) {
		p.escape("kill reached VICTIM")
	}
	if p.step("tgkill(VICTIM, VICTIM, SIGUSR2)", unix.Tgkill(v, v, unix.SIGUSR2)) {
		p.escape("tgkill reached VICTIM")
	}
	var info [128]byte
	*(*int32)(unsafe.Pointer(&info[0])) = int32(unix.SIGHUP)
	*(*int32)(unsafe.Pointer(&info[8])) = -1 // SI_QUEUE
	_, _, e := syscall.RawSyscall(unix.SYS_RT_SIGQUEUEINFO, uintptr(v), uintptr(unix.SIGHUP), uintptrOf(&info[0]))
	if p.step("rt_sigqueueinfo(VICTIM, SIGHUP)", errOf(e)) {
		p.escape("rt_sigqueueinfo reached VICTIM")
	}
	if pfd, err := unix.PidfdOpen(v, 0); p.step("pidfd_open(VICTIM)", err) {
		if p.step("pidfd_send_signal(SIGALRM)", unix.PidfdSendSignal(pfd, unix.SIGALRM, nil, 0)) {
			p.escape("pidfd_send_signal reached VICTIM")
		}
		unix.Close(pfd)
	}
	// F_SETOWN + O_ASYNC: a write to the pipe sends SIGIO to the owner.
	var fds [2]int
	if p.step("pipe", unix.Pipe2(fds[:], unix.O_CLOEXEC)) {
		unix.FcntlInt(uintptr(fds[0]), unix.F_SETFL, unix.O_ASYNC|unix.O_NONBLOCK)
		if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETOWN, v); p.step("fcntl(F_SETOWN, VICTIM)", err) {
			unix.Write(fds[1], []byte("x"))
			time.Sleep(50 * time.Millisecond)
		}
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	// kill(-1) with a signal whose default action is to ignore it.
	if p.step("kill(-1, SIGWINCH)", unix.Kill(-1, unix.SIGWINCH)) {
		p.note("kill(-1) delivered to some process")
	}
}

// probeC2 attaches to its parent and VICTIM and reads VICTIM's memory.
func probeC2(p *run) {
	lockThread()
	v := victimPid(p)
	for _, t := range []struct {
		name string
		pid  int
	}{{"parent", os.Getppid()}, {"VICTIM", v}} {
		if t.pid <= 1 {
			continue
		}
		// SEIZE does not stop the tracee; the kernel detaches at our exit.
		_, _, e := syscall.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_SEIZE, uintptr(t.pid), 0, 0, 0, 0)
		if p.step("ptrace(SEIZE, "+t.name+")", errOf(e)) {
			p.escape("ptrace attached to %s (pid %d)", t.name, t.pid)
		}
	}
	addr := uintptr(0x400000)
	if f, err := os.Open("/proc/" + strconv.Itoa(v) + "/maps"); err == nil {
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			s, _, _ := strings.Cut(sc.Text(), "-")
			if a, err := strconv.ParseUint(s, 16, 64); err == nil {
				addr = uintptr(a)
			}
		}
		f.Close()
	}
	buf := make([]byte, 16)
	n, err := unix.ProcessVMReadv(v, []unix.Iovec{{Base: &buf[0], Len: 16}}, []unix.RemoteIovec{{Base: addr, Len: 16}}, 0)
	if p.step("process_vm_readv(VICTIM)", err) && n > 0 {
		p.escape("read %d bytes of VICTIM's memory", n)
	}
	if pfd, err := unix.PidfdOpen(v, 0); p.step("pidfd_open(VICTIM)", err) {
		if fd, err := unix.PidfdGetfd(pfd, 0, 0); p.step("pidfd_getfd(VICTIM, 0)", err) {
			unix.Close(fd)
			p.escape("stole VICTIM's fd 0")
		}
		unix.Close(pfd)
	}
}

// probeC5 leaves a daemon (setsid, double parent) that should die with the
// box; the oracle looks for its token on the host afterwards.
func probeC5(p *run) {
	c := exec.Command("/proc/self/exe", "__probe", "sleeper", "token="+p.arg("token"))
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if p.step("start setsid daemon", c.Start()) {
		p.note("daemon pid %d left behind", c.Process.Pid)
		c.Process.Release()
	}
}

// probeC6 changes VICTIM's nice value, CPU affinity, I/O priority and a limit.
func probeC6(p *run) {
	v := victimPid(p)
	if p.step("setpriority(VICTIM, 7)", unix.Setpriority(unix.PRIO_PROCESS, v, 7)) {
		p.escape("changed VICTIM's nice value")
	}
	var set unix.CPUSet
	set.Set(0)
	if p.step("sched_setaffinity(VICTIM)", unix.SchedSetaffinity(v, &set)) {
		p.escape("changed VICTIM's CPU affinity")
	}
	_, _, e := syscall.RawSyscall(unix.SYS_IOPRIO_SET, 1, uintptr(v), 3<<13)
	if p.step("ioprio_set(VICTIM, idle)", errOf(e)) {
		p.escape("changed VICTIM's I/O priority")
	}
	var old unix.Rlimit
	if p.step("prlimit(VICTIM, NOFILE, get)", unix.Prlimit(v, unix.RLIMIT_NOFILE, nil, &old)) {
		lower := unix.Rlimit{Cur: old.Cur - 1, Max: old.Max}
		if p.step("prlimit(VICTIM, NOFILE, set)", unix.Prlimit(v, unix.RLIMIT_NOFILE, &lower, nil)) {
			p.escape("changed VICTIM's RLIMIT_NOFILE")
		}
	}
}

// probeC7 sets the host clock to the time it just read (a no-op in effect)
// and asks for a clock adjustment change.
func probeC7(p *run) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	_, _, e := syscall.RawSyscall(unix.SYS_CLOCK_SETTIME, unix.CLOCK_REALTIME, uintptrOf(&ts), 0)
	if p.step("clock_settime(REALTIME)", errOf(e)) {
		p.escape("clock_settime works: the host clock can be changed")
	}
	var tx unix.Timex
	unix.Adjtimex(&tx) // read the current values
	tx.Modes = unix.ADJ_TICK
	if _, err := unix.Adjtimex(&tx); p.step("adjtimex(ADJ_TICK, unchanged)", err) {
		p.escape("adjtimex may change host time")
	}
	out, _, err := child("timens-child", &syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWTIME, Pdeathsig: syscall.SIGKILL})
	if p.step("clone(CLONE_NEWTIME)", err) {
		p.note("time namespace created (%s)", out)
	}
}

func init() {
	helpers["timens-child"] = func([]string, map[string]string) int { return 0 }
}
