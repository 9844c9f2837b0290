package linux

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExecInNamespaces runs exe with argv inside the user and network
// namespaces of pid (a sandbox child still waiting to be released), with fd
// as its fd 3, and waits for it. The helper is a host binary, so it must be
// gone before the target starts; this returns only after it has exited.
func ExecInNamespaces(pid int, exe string, argv, env []string, fd int) error {
	var p program
	nsUser, nsNet := p.slot(), p.slot()
	dir := "/proc/" + strconv.Itoa(pid) + "/ns/"
	// Open both first: entering the user namespace changes what we may open.
	p.sys("open user namespace", unix.SYS_OPENAT, atFDCWD, p.str(dir+"user"), unix.O_RDONLY|unix.O_CLOEXEC).out = nsUser
	p.sys("open network namespace", unix.SYS_OPENAT, atFDCWD, p.str(dir+"net"), unix.O_RDONLY|unix.O_CLOEXEC).out = nsNet
	o := p.sys("enter user namespace", unix.SYS_SETNS, 0, unix.CLONE_NEWUSER)
	o.in, o.inArg = nsUser, 0
	o = p.sys("enter network namespace", unix.SYS_SETNS, 0, unix.CLONE_NEWNET)
	o.in, o.inArg = nsNet, 0
	p.sys("helper fd", unix.SYS_DUP3, uintptr(fd), 3, 0)
	// The helper is not uid 0 inside, so exec would drop every capability:
	// keep only the network ones, as ambient capabilities.
	caps := uint32(1<<unix.CAP_NET_BIND_SERVICE | 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_RAW)
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := &[2]unix.CapUserData{{Effective: caps, Permitted: caps, Inheritable: caps}}
	p.keep = append(p.keep, hdr, data)
	p.sys("helper capabilities", unix.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0])))
	for _, c := range []uintptr{unix.CAP_NET_BIND_SERVICE, unix.CAP_NET_ADMIN, unix.CAP_NET_RAW} {
		p.sys("helper capabilities", unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, c, 0, 0)
	}
	p.sys("parent-death signal", unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL))
	p.sys("exec helper", unix.SYS_EXECVE, p.str(exe), p.strv(argv), p.strv(env))

	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	errR, errW := highFd(fds[0]), highFd(fds[1])
	var (
		hpid  int
		pidfd int32
		errno syscall.Errno
	)
	syscall.ForkLock.Lock()
	onForkerThread(func() { hpid, pidfd, errno = forkRun(&p, 0, errW, -1) })
	syscall.ForkLock.Unlock()
	unix.Close(errW)
	if errno != 0 {
		unix.Close(errR)
		return fmt.Errorf("start helper: %w", errno)
	}
	if pidfd >= 0 {
		defer unix.Close(int(pidfd))
	}
	var fail childFailure
	n, _ := readFull(errR, (*[unsafe.Sizeof(fail)]byte)(unsafe.Pointer(&fail))[:])
	unix.Close(errR)
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(hpid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	if n > 0 {
		stage := "helper"
		if int(fail.Op) < len(p.ops) {
			stage = p.stages[p.ops[fail.Op].stage]
		}
		return &StageError{Stage: stage, Err: syscall.Errno(fail.Errno)}
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("network helper failed (%v)", ws)
	}
	_ = os.Getpid
	return nil
}
