package probe

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// child re-executes this binary as `__probe sub args...` with attr (new
// namespaces, credentials) and returns its output and exit state. The child
// is bounded to 10 seconds.
func child(sub string, attr *syscall.SysProcAttr, args ...string) (string, *os.ProcessState, error) {
	return runChild("/proc/self/exe", sub, attr, args...)
}

// child2 is child with another binary (e.g. a setuid copy of this one).
func child2(bin, sub string, args ...string) (string, *os.ProcessState, error) {
	return runChild(bin, sub, nil, args...)
}

func runChild(bin, sub string, attr *syscall.SysProcAttr, args ...string) (string, *os.ProcessState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, append([]string{"__probe", sub}, args...)...)
	c.SysProcAttr = attr
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return strings.TrimSpace(out.String()), c.ProcessState, err
}

// killedBySIGSYS reports whether a child died of the seccomp kill signal.
func killedBySIGSYS(st *os.ProcessState) bool {
	if st == nil {
		return false
	}
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS
}

// userns is a SysProcAttr for a child in a new user namespace (plus flags)
// where it is root.
func userns(flags uintptr, setgroups bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | flags,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: setgroups,
		Pdeathsig:                  syscall.SIGKILL,
	}
}

// rawFork clones a child that exits at once (or, with hold, sleeps up to
// holdTime with all signals blocked, dying with its parent). Only raw system
// calls run in the child: it is a copy of a Go process without the runtime.
//
//go:nosplit
func rawFork(flags uintptr, hold bool) (int, syscall.Errno) {
	r1, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, flags|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r1 == 0 {
		if hold {
			syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 2, uintptr(unsafe.Pointer(&allSignals)), 0, 8, 0, 0)
			syscall.RawSyscall6(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0, 0)
			syscall.RawSyscall6(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&holdTime)), 0, 0, 0, 0, 0)
		}
		syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 0, 0, 0, 0, 0, 0)
	}
	return int(r1), 0
}

// cloneArgs is struct clone_args (version 0, 64 bytes).
type cloneArgs struct {
	flags, pidfd, childTid, parentTid, exitSignal, stack, stackSize, tls uint64
}

var cargs cloneArgs

// rawClone3 is rawFork through clone3, whose flags BPF cannot read.
//
//go:nosplit
func rawClone3(flags uint64) (int, syscall.Errno) {
	cargs = cloneArgs{flags: flags, exitSignal: uint64(syscall.SIGCHLD)}
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&cargs)), unsafe.Sizeof(cargs), 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r1 == 0 {
		syscall.RawSyscall6(unix.SYS_EXIT_GROUP, 0, 0, 0, 0, 0, 0)
	}
	return int(r1), 0
}

var (
	allSignals = ^uint64(0)
	holdTime   = syscall.Timespec{Sec: 20}
)

func reap(pid int) {
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
}

func errOf(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// readHead reads at most n bytes of path.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := f.Read(b)
	if k > 0 {
		return b[:k], nil
	}
	return nil, err
}

// openWrite opens path for writing without truncating or creating it: the
// probe proves it could write, and never does.
func openWrite(path string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
