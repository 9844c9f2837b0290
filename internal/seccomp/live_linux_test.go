package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Children are this test binary re-executed with childEnv set to a mode.
const childEnv = "AIRLOCK_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		childMain(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childResult maps probe name -> errno (0 = success), written as JSON on fd 3.
type childResult map[string]int

func errnoOf(e syscall.Errno) int { return int(e) }

func childMain(mode string) {
	ctl := os.NewFile(3, "ctl")
	res := childResult{}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	runtime.LockOSThread() // every filtered call below runs on this thread
	switch mode {
	case "default":
		// Controls: the same attacks before the filter.
		res["control_tiocsti"] = tiocstiCall(0, tiocsti, 'A')
		res["control_keyctl"] = keyctlCall()
		res["control_io_uring_setup"] = ioUringCall()
		res["control_socket_alg"] = socketCall(38, unix.SOCK_SEQPACKET)

		f, _ := Preset("default")
		prog, err := f.Compile(runtime.GOARCH)
		if err != nil {
			fail(err)
		}
		if _, err := Install(Fprog(prog), unix.SECCOMP_FILTER_FLAG_TSYNC); err != nil {
			fail(err)
		}
		res["io_uring_setup"] = ioUringCall()
		res["keyctl"] = keyctlCall()
		_, _, e := unix.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
		res["unshare_newuser"] = errnoOf(e)
		res["tiocsti"] = tiocstiCall(0, tiocsti, 'Y')
		res["tiocsti_high"] = tiocstiCall(0, 0x123<<32|tiocsti, 'Z')
		res["socket_alg"] = socketCall(38, unix.SOCK_SEQPACKET)
		res["socket_vsock"] = socketCall(40, unix.SOCK_STREAM)
		res["socket_inet"] = socketCall(unix.AF_INET, unix.SOCK_STREAM)
		_, _, e = unix.Syscall(1000, 0, 0, 0)
		res["nr_1000"] = errnoOf(e)
		_, _, e = unix.Syscall(unix.SYS_GETPID, 0, 0, 0)
		res["getpid"] = errnoOf(e)
		// Other threads are filtered too (TSYNC): probe from a new one.
		ch := make(chan int)
		go func() {
			runtime.LockOSThread()
			ch <- keyctlCall()
		}()
		res["keyctl_other_thread"] = <-ch
	case "x32":
		// Control: without the filter the x32 call just fails (or runs).
		unix.Syscall(x32SyscallBit|unix.SYS_GETPID, 0, 0, 0)
		ctl.Write([]byte("control\n"))
		f, _ := Preset("default")
		prog, _ := f.Compile(runtime.GOARCH)
		if _, err := Install(Fprog(prog), unix.SECCOMP_FILTER_FLAG_TSYNC); err != nil {
			fail(err)
		}
		ctl.Write([]byte("installed\n"))
		unix.Syscall(x32SyscallBit|unix.SYS_GETPID, 0, 0, 0)
		ctl.Write([]byte("survived\n"))
		os.Exit(0)
	case "notify":
		notifyChild(ctl, res)
	case "notify-hold":
		notifyHoldChild(ctl)
	case "exec":
		execChild()
	case "bench":
		benchChild(ctl, os.Getenv(execPresetEnv))
		os.Exit(0)
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
	if err := json.NewEncoder(ctl).Encode(res); err != nil {
		fail(err)
	}
	// Stay alive (and keep the tty) until the parent has looked.
	var b [1]byte
	ctl.Read(b[:])
}

func tiocstiCall(fd int, req uint64, c byte) int {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&c)))
	return errnoOf(e)
}

func keyctlCall() int {
	const keyctlGetKeyringID, keySpecSession = 0, -3
	ks := int64(keySpecSession)
	_, _, e := unix.Syscall(unix.SYS_KEYCTL, keyctlGetKeyringID, uintptr(ks), 0)
	return errnoOf(e)
}

// io_uring_setup with a NULL params pointer: EFAULT when the syscall runs.
func ioUringCall() int {
	_, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 8, 0, 0)
	return errnoOf(e)
}

func socketCall(family, typ int) int {
	fd, _, e := unix.Syscall(unix.SYS_SOCKET, uintptr(family), uintptr(typ), 0)
	if e == 0 {
		unix.Close(int(fd))
	}
	return errnoOf(e)
}

// openPty returns the master and an open slave in raw mode.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 0, 0
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// startChild runs this binary in mode with fd 3 a socketpair end; extra
// lets the caller set stdin and session flags.
func startChild(t *testing.T, mode string, setup func(*exec.Cmd)) (*exec.Cmd, *os.File) {
	t.Helper()
	return startChildCmd(t, mode, nil, setup)
}

func startChildEnv(t *testing.T, mode string, env []string) (*exec.Cmd, *os.File) {
	return startChildCmd(t, mode, env, nil)
}

func startChildCmd(t *testing.T, mode string, env []string, setup func(*exec.Cmd)) (*exec.Cmd, *os.File) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl-child")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if setup != nil {
		setup(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	t.Cleanup(func() { ours.Close() })
	return cmd, ours
}

func requireSeccomp(t *testing.T) {
	t.Helper()
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("no syscall table for GOARCH %s", runtime.GOARCH)
	}
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		t.Skipf("kernel without seccomp: %v", err)
	}
}

// The default filter installed the way the launcher does it (Fprog,
// no_new_privs, seccomp TSYNC) stops each attack; TIOCSTI is checked from
// outside by reading the pty's input queue.
func TestLiveDefaultFilter(t *testing.T) {
	requireSeccomp(t)
	master, slave := openPty(t)
	defer master.Close()
	defer slave.Close()
	cmd, ctl := startChild(t, "default", func(c *exec.Cmd) {
		c.Stdin = slave
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	})
	var res childResult
	if err := json.NewDecoder(ctl).Decode(&res); err != nil {
		cmd.Wait()
		t.Fatalf("child result: %v", err)
	}
	// The child still holds the tty: read its input queue now.
	buf := make([]byte, 64)
	n, _ := slave.Read(buf)
	injected := string(buf[:n])
	ctl.Write([]byte{1})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	t.Logf("results %v, tty input %q", res, injected)

	E := func(e unix.Errno) int { return int(e) }
	want := map[string]int{
		"io_uring_setup":      E(unix.ENOSYS),
		"keyctl":              E(unix.EPERM),
		"unshare_newuser":     E(unix.EPERM),
		"tiocsti":             E(unix.EPERM),
		"tiocsti_high":        E(unix.EPERM),
		"socket_alg":          E(unix.EPERM),
		"socket_vsock":        E(unix.EPERM),
		"socket_inet":         0,
		"nr_1000":             E(unix.ENOSYS),
		"getpid":              0,
		"keyctl_other_thread": E(unix.EPERM),
	}
	for k, v := range want {
		if got, ok := res[k]; !ok || got != v {
			t.Errorf("%s: errno %d (%v), want %d (%v)", k, got, unix.Errno(got), v, unix.Errno(v))
		}
	}
	// The attack itself, seen from outside: no Y or Z reached the tty.
	if strings.ContainsAny(injected, "YZ") {
		t.Errorf("TIOCSTI injected %q through the filter", injected)
	}
	// Controls show the attacks were live without the filter.
	if res["control_tiocsti"] == 0 {
		if injected != "A" {
			t.Errorf("control TIOCSTI succeeded but tty input is %q, want \"A\"", injected)
		}
	} else {
		t.Logf("TIOCSTI control failed with %v (dev.tty.legacy_tiocsti=0 or no CAP_SYS_ADMIN): the tty check proves less", unix.Errno(res["control_tiocsti"]))
	}
	if res["control_keyctl"] != 0 {
		t.Logf("keyctl control failed: %v", unix.Errno(res["control_keyctl"]))
	}
	if got := res["control_io_uring_setup"]; got == E(unix.ENOSYS) {
		t.Logf("io_uring control: kernel has no io_uring")
	}
}

// An x32 syscall on amd64 kills the process (H4).
func TestLiveX32Killed(t *testing.T) {
	requireSeccomp(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 exists only on amd64")
	}
	cmd, ctl := startChild(t, "x32", nil)
	var out strings.Builder
	buf := make([]byte, 64)
	for {
		n, err := ctl.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child exit: %v, output %q", err, out.String())
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !strings.Contains(out.String(), "control") || !strings.Contains(out.String(), "installed") || strings.Contains(out.String(), "survived") ||
		!ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("x32 getpid: status %v, output %q; want killed by SIGSYS after install", ws, out.String())
	}
}
