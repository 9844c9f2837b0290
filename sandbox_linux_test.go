package airlock_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock"
)

// Sandbox tests attack the sandbox with a hostile helper (this test binary,
// re-run inside with AIRLOCK_HOSTILE set) and check the effect from outside.
// .ci/run runs them as root and as an unprivileged user.

var (
	hostileBin string // a world-readable copy of this test binary
	cliBin     string // the airlock CLI, built once
)

func TestMain(m *testing.M) {
	airlock.RunHelper() // the network set-up helper re-executes this binary
	if mode := os.Getenv("AIRLOCK_HOSTILE"); mode != "" {
		os.Exit(hostile(mode, os.Args[1:]))
	}
	if mode := os.Getenv("AIRLOCK_TEST_BROKER"); mode != "" {
		os.Exit(brokerMain(mode))
	}
	dir, err := os.MkdirTemp("", "airlock-test-bin-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	hostileBin = filepath.Join(dir, "hostile")
	self, _ := os.Executable()
	if b, err := os.ReadFile(self); err == nil {
		os.WriteFile(hostileBin, b, 0o755)
	}
	cliBin = os.Getenv("AIRLOCK_BIN") // .ci/run builds it once for both users
	if cliBin == "" {
		cliBin = filepath.Join(dir, "airlock")
		if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", cliBin, "./cmd/airlock").CombinedOutput(); err != nil {
			cliBin = "" // tests needing the CLI fail with this output
			fmt.Fprintf(os.Stderr, "building the CLI failed (go toolchain needed): %s\n", out)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hostile runs one attack from inside the sandbox and prints what it saw.
func hostile(mode string, args []string) int {
	switch mode {
	case "fds":
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			t, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fmt.Printf("%s %s\n", e.Name(), t)
			if n, _ := strconv.Atoi(e.Name()); n > 2 {
				var b [64]byte
				if k, err := syscall.Pread(n, b[:], 0); err == nil {
					fmt.Printf("read %q\n", b[:k])
				}
				if err := syscall.Fchdir(n); err == nil {
					wd, _ := os.Getwd()
					fmt.Printf("fchdir %s\n", wd)
				}
			}
		}
	case "tiocsti":
		for _, req := range []uintptr{unix.TIOCSTI, 0x123<<32 | unix.TIOCSTI} {
			c := byte('X')
			_, _, e := syscall.Syscall(syscall.SYS_IOCTL, 0, req, uintptr(unsafePointer(&c)))
			fmt.Printf("tiocsti %#x: %v\n", req, e)
		}
	case "kill":
		pid, _ := strconv.Atoi(args[0])
		fmt.Println("kill pid:", syscall.Kill(pid, syscall.SIGUSR1))
		fmt.Println("kill -1:", syscall.Kill(-1, syscall.SIGUSR1))
		fmt.Println("setpriority:", syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19))
		_, _, e := syscall.Syscall6(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, uintptr(pid), 0, 0, 0, 0)
		fmt.Println("ptrace victim:", e)
		_, _, e = syscall.Syscall6(syscall.SYS_PTRACE, syscall.PTRACE_ATTACH, uintptr(os.Getppid()), 0, 0, 0, 0)
		fmt.Println("ptrace parent:", e)
	case "exe":
		// A4: try to open every process's executable for writing.
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			f, err := os.OpenFile("/proc/"+e.Name()+"/exe", os.O_WRONLY, 0)
			fmt.Printf("open /proc/%s/exe: %v\n", e.Name(), err)
			if err == nil {
				f.Close()
			}
		}
	case "getppid":
		// A syscall-heavy loop, timed inside so start-up is excluded.
		n, _ := strconv.Atoi(args[0])
		t0 := time.Now()
		for i := 0; i < n; i++ {
			syscall.Getppid()
		}
		fmt.Println(time.Since(t0).Nanoseconds())
	case "shm":
		id, _, e := syscall.Syscall(syscall.SYS_SHMGET, 0x5B0C0A1, 0, 0)
		fmt.Println("shmget:", int(id), e)
	default:
		fmt.Fprintln(os.Stderr, "unknown hostile mode", mode)
		return 2
	}
	return 0
}

// policy is the default policy plus the hostile helper.
func policy(t *testing.T) airlock.Policy {
	t.Helper()
	p := airlock.DefaultPolicy()
	p.Mounts = append(p.Mounts, airlock.ReadOnly(hostileBin, "/.airlock/hostile"))
	p.Env = append(p.Env, "AIRLOCK_HOSTILE=")
	return p
}

func runHostile(t *testing.T, p airlock.Policy, mode string, args ...string) string {
	t.Helper()
	c := airlock.Command(p, "/.airlock/hostile", args...)
	c.Env = []string{"AIRLOCK_HOSTILE=" + mode}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("hostile %s: %v\n%s", mode, err, out)
	}
	return string(out)
}

func run(t *testing.T, p airlock.Policy, script string) (string, *airlock.Result, error) {
	t.Helper()
	c := airlock.Command(p, "/bin/sh", "-c", script)
	out, err := c.CombinedOutput()
	return string(out), c.Result, err
}

// sandboxUID is the host uid the sandbox runs as.
func sandboxUID() int {
	if os.Geteuid() == 0 {
		return 65534
	}
	return os.Getuid()
}

// canaryDir makes a host directory with a secret and returns it.
func canaryDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "airlock-canary-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	os.Chmod(d, 0o777)
	if err := os.WriteFile(filepath.Join(d, "secret"), []byte("canary-secret-4417"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(d, sandboxUID(), sandboxUID())
		os.Chown(filepath.Join(d, "secret"), sandboxUID(), sandboxUID())
	}
	return d
}

func TestStatuses(t *testing.T) {
	p := airlock.DefaultPolicy()
	cases := []struct {
		script string
		status airlock.Status
		code   int
		signal string
	}{
		{"exit 0", airlock.OK, 0, ""},
		{"exit 3", airlock.NonZeroExit, 3, ""},
		{"kill -SEGV $$", airlock.Signaled, 128 + 11, "SIGSEGV"},
	}
	for _, tc := range cases {
		_, res, _ := run(t, p, tc.script)
		if res.Status != tc.status || res.ExitCode != tc.code || res.Signal != tc.signal {
			t.Errorf("%q: got %s/%d/%s, want %s/%d/%s", tc.script, res.Status, res.ExitCode, res.Signal, tc.status, tc.code, tc.signal)
		}
	}
	p.Limits.WallTime = 300 * time.Millisecond
	_, res, err := run(t, p, "sleep 30")
	var ee *airlock.ExitError
	if !errors.As(err, &ee) || res.Status != airlock.WallTimeLimit {
		t.Errorf("sleep past the wall limit: err %v, status %s", err, res.Status)
	}
	c := airlock.Command(airlock.DefaultPolicy(), "no-such-program-here")
	err = c.Run()
	var se *airlock.SetupError
	if !errors.As(err, &se) || !errors.Is(err, syscall.ENOENT) || c.Result.Status != airlock.StatusSetupError {
		t.Errorf("missing program: err %v (%T), status %v", err, err, c.Result.Status)
	}
}

func TestContextCancelKillsTree(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := airlock.CommandContext(ctx, airlock.DefaultPolicy(), "/bin/sh", "-c", "sleep 30 & sleep 30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := c.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel: %v", err)
	}
}

// A9, A12, B1-style: nothing outside the grants is writable or readable.
func TestFilesystemGrants(t *testing.T) {
	ro, rw, hidden := canaryDir(t), canaryDir(t), canaryDir(t)
	p := policy(t)
	p.Mounts = append(p.Mounts, airlock.ReadOnly(ro, "/ro"), airlock.ReadWrite(rw, "/rw"))
	script := `
echo pwned > /ro/secret; echo new > /ro/new; mkdir -p /ro/.git/hooks
echo written > /rw/out
ln /ro/secret /rw/hardlink
ln /usr/bin/env /rw/hardlink2
cat ` + hidden + `/secret; ls / ; echo x > /etc/passwd; echo x > /usr/evil
echo x > /tmp/t && echo tmp-ok
cat /etc/shadow
cat /proc/kcore | head -c 10
`
	out, _, _ := run(t, p, script)
	if b, _ := os.ReadFile(filepath.Join(ro, "secret")); string(b) != "canary-secret-4417" {
		t.Errorf("read-only canary changed: %q", b)
	}
	for _, f := range []string{filepath.Join(ro, "new"), filepath.Join(ro, ".git"), filepath.Join(rw, "hardlink"), filepath.Join(rw, "hardlink2")} {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s was created on the host", f)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(rw, "out")); string(b) != "written\n" {
		t.Errorf("writable grant not writable: %q\n%s", b, out)
	}
	if strings.Contains(out, "canary-secret-4417") {
		t.Errorf("ungranted host file readable:\n%s", out)
	}
	if !strings.Contains(out, "tmp-ok") {
		t.Errorf("private /tmp not writable:\n%s", out)
	}
	if _, err := os.Stat("/usr/evil"); err == nil {
		t.Errorf("/usr/evil created on the host")
	}
	if strings.Contains(out, "root:") && strings.Contains(out, "$") {
		t.Errorf("/etc/shadow readable:\n%s", out)
	}
}

// Files owned by host root with mode 0600 stay unreadable: the sandbox user is
// never host root.
func TestRootOwnedFileUnreadable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a root-owned 0600 file; the unprivileged run covers the non-root mapping")
	}
	d := canaryDir(t)
	f := filepath.Join(d, "rootonly")
	os.WriteFile(f, []byte("root-only-7731"), 0o600)
	os.Chown(f, 0, 0)
	p := airlock.DefaultPolicy()
	p.Mounts = append(p.Mounts, airlock.ReadOnly(d, "/d"))
	out, _, _ := run(t, p, "id -u; cat /d/rootonly")
	if strings.Contains(out, "root-only-7731") {
		t.Fatalf("root-owned 0600 file readable:\n%s", out)
	}
	if !strings.HasPrefix(out, "65534") {
		t.Errorf("sandbox uid: %q, want 65534", out)
	}
}

// B3: the environment is explicit.
func TestEnvironmentExplicit(t *testing.T) {
	t.Setenv("SBX_CANARY_SECRET", "env-canary-991")
	p := airlock.DefaultPolicy()
	p.Env = append(p.Env, "GIVEN=yes")
	out, _, err := run(t, p, "env")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "env-canary-991") {
		t.Errorf("broker environment leaked:\n%s", out)
	}
	var keys []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, _, _ := strings.Cut(l, "=")
		keys = append(keys, k)
	}
	want := map[string]bool{"PATH": true, "HOME": true, "TERM": true, "LANG": true, "GIVEN": true, "PWD": true, "SHLVL": true, "_": true}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected variable %s inside", k)
		}
	}
}

// A3: fds the broker holds, even without close-on-exec, never reach the target.
func TestInheritedFdsClosed(t *testing.T) {
	d := canaryDir(t)
	fd, err := syscall.Open(filepath.Join(d, "secret"), syscall.O_RDONLY, 0) // no O_CLOEXEC on purpose
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	dfd, err := syscall.Open(d, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dfd)
	out := runHostile(t, policy(t), "fds")
	if strings.Contains(out, "canary-secret") || strings.Contains(out, d) || strings.Contains(out, "fchdir") {
		t.Fatalf("inherited fd reachable inside:\n%s", out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		n, _, _ := strings.Cut(l, " ")
		if i, err := strconv.Atoi(n); err == nil && i > 3 {
			t.Errorf("unexpected fd inside: %s", l)
		}
	}
}

// victim starts an outside process running as the sandbox's host uid that
// records every SIGUSR1 it receives.
func victim(t *testing.T) (pid int, log string) {
	t.Helper()
	d := canaryDir(t)
	log = filepath.Join(d, "signals")
	os.WriteFile(log, nil, 0o666)
	os.Chmod(log, 0o666)
	cmd := exec.Command("/bin/sh", "-c", `trap 'echo USR1 >> `+log+`' USR1; echo ready >> `+log+`.ready; while :; do sleep 0.05; done`)
	cmd.Env = []string{"VICTIM_SECRET=victim-env-5521", "PATH=/usr/bin:/bin"}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(sandboxUID()), Gid: uint32(sandboxUID())}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(log + ".ready"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd.Process.Pid, log
}

// B2, C1, C2, C6: other processes are invisible and untouchable.
func TestOtherProcessesUnreachable(t *testing.T) {
	pid, log := victim(t)
	// Prove the oracle works: a signal from outside is recorded.
	out := runHostile(t, policy(t), "kill", strconv.Itoa(pid))
	out2, _, _ := run(t, airlock.DefaultPolicy(), "ls /proc; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'")
	time.Sleep(200 * time.Millisecond)
	if b, _ := os.ReadFile(log); len(b) != 0 {
		t.Fatalf("victim got a signal from inside:\n%s\nattack output:\n%s", b, out)
	}
	if strings.Contains(out2, "victim-env-5521") || strings.Contains(out2, strconv.Itoa(pid)+"\n") {
		t.Errorf("victim visible inside:\n%s", out2)
	}
	var st syscall.Stat_t
	_ = st
	if prio, err := unix.Getpriority(unix.PRIO_PROCESS, pid); err == nil && prio != 20 && prio != 0 {
		t.Errorf("victim priority changed to %d", prio)
	}
	syscall.Kill(pid, syscall.SIGUSR1)
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(log); len(b) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("oracle broken: the victim did not record a signal sent from outside")
}

// A4: the host binary that starts the sandbox cannot be rewritten from inside.
func TestHelperBinaryNotWritable(t *testing.T) {
	before, _ := os.ReadFile(hostileBin)
	out := runHostile(t, policy(t), "exe")
	after, _ := os.ReadFile(hostileBin)
	if !bytes.Equal(before, after) {
		t.Fatal("the helper binary changed on the host")
	}
	if strings.Contains(out, ": <nil>") {
		t.Errorf("an executable was opened for writing:\n%s", out)
	}
}

// readTerminal collects what the caller's terminal master m receives until
// stop says enough or the read fails; each, if set, sees the text after
// every read.
func readTerminal(m *os.File, stop func(string) bool, each func(string)) <-chan string {
	out := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 65536)
		for !stop(b.String()) {
			k, err := m.Read(buf)
			b.Write(buf[:k])
			if err != nil {
				break
			}
			if each != nil {
				each(b.String())
			}
		}
		out <- b.String()
	}()
	return out
}

// callerTerminal is a pseudo-terminal standing for the user's: the test
// holds the master, the sandbox gets the slave as its stdio.
func callerTerminal(t *testing.T) (master, slave *os.File) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no /dev/ptmx on this host: cannot make a caller terminal")
	}
	t.Cleanup(func() { m.Close() })
	unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0)
	n, _ := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// E1: the target never holds the caller's terminal; TIOCSTI cannot type into it.
func TestTIOCSTIIntoCallerTerminal(t *testing.T) {
	m, s := callerTerminal(t)
	// Non-canonical, so queued input counts before a newline.
	if tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err == nil {
		tio.Lflag &^= unix.ICANON | unix.ECHO
		unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio)
	}
	// Prove the oracle: TIOCSTI from here lands in the slave's input queue
	// (needs dev.tty.legacy_tiocsti=1 or CAP_SYS_ADMIN).
	c := byte('Q')
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, s.Fd(), unix.TIOCSTI, uintptr(unsafePointer(&c)))
	oracle := e == 0
	if oracle {
		if q, _ := unix.IoctlGetInt(int(s.Fd()), unix.TIOCINQ); q != 1 {
			t.Fatalf("oracle: %d bytes queued after one TIOCSTI", q)
		}
		unix.IoctlSetInt(int(s.Fd()), unix.TCFLSH, unix.TCIFLUSH)
	}
	cmd := airlock.Command(policy(t), "/.airlock/hostile")
	cmd.Env = []string{"AIRLOCK_HOSTILE=tiocsti"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	go io.Copy(io.Discard, m)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if q, _ := unix.IoctlGetInt(int(s.Fd()), unix.TIOCINQ); q != 0 {
		t.Fatalf("%d bytes were injected into the caller's terminal", q)
	}
	if !oracle {
		t.Log("TIOCSTI is disabled on this host (legacy_tiocsti=0): the check above is weaker")
	}
}

// D1, D2, D3: abstract and pathname sockets, SysV IPC and /dev/shm of the host.
func TestHostIPCUnreachable(t *testing.T) {
	abs, err := net_ListenUnix("@airlock-canary-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer abs.Close()
	d := canaryDir(t)
	pathSock := filepath.Join(d, "canary.sock")
	ps, err := net_ListenUnix(pathSock)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	os.Chmod(pathSock, 0o777)
	id, _, e := syscall.Syscall(syscall.SYS_SHMGET, 0x5B0C0A1, 4096, 01000|0o666)
	if e != 0 {
		t.Fatalf("shmget: %v", e)
	}
	defer syscall.Syscall(syscall.SYS_SHMCTL, id, 0 /* IPC_RMID */, 0)
	os.WriteFile("/dev/shm/airlock-canary", []byte("shm-canary-662"), 0o644)
	defer os.Remove("/dev/shm/airlock-canary")

	p := policy(t)
	script := `
/.airlock/hostile; cat /dev/shm/airlock-canary
python3 - <<'P' 2>&1 || true
import socket
for a in ["\0airlock-canary-` + strconv.Itoa(os.Getpid()) + `", "` + pathSock + `"]:
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(a); print("CONNECTED", a)
    except Exception as e: print("refused", a, e)
P`
	c := airlock.Command(p, "/bin/sh", "-c", script)
	c.Env = []string{"AIRLOCK_HOSTILE=shm"}
	out, _ := c.CombinedOutput()
	if strings.Contains(string(out), "CONNECTED") || strings.Contains(string(out), "shm-canary-662") {
		t.Errorf("host IPC reachable:\n%s", out)
	}
	if !strings.Contains(string(out), "shmget: -1") {
		t.Errorf("host SysV segment visible:\n%s", out)
	}
	for _, l := range []*unixListener{abs, ps} {
		if l.accepted() > 0 {
			t.Errorf("%s accepted a connection from inside", l.addr)
		}
	}
}

// C5: killing the broker with SIGKILL kills the whole tree, daemons included.
func TestBrokerDeathKillsTree(t *testing.T) {
	if cliBin == "" {
		t.Fatal("the CLI did not build")
	}
	marker := strconv.Itoa(600000 + os.Getpid()%10000)
	cmd := exec.Command(cliBin, "run", "--", "/bin/sh", "-c", "setsid sh -c 'sleep "+marker+" & sleep "+marker+"' & sleep "+marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300 && countProcs("sleep "+marker) < 3; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := countProcs("sleep " + marker); n < 3 {
		t.Fatalf("expected 3 sleeps inside, saw %d", n)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for i := 0; i < 200; i++ {
		if countProcs("sleep "+marker) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d sandboxed processes outlived the broker", countProcs("sleep "+marker))
}

// SIGTERM, SIGINT or SIGHUP to airlock ends the run: the tree is killed,
// the result is written, and no process or cgroup is left.
func TestBrokerSignalEndsRun(t *testing.T) {
	if cliBin == "" {
		t.Fatal("the CLI did not build")
	}
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			marker := strconv.Itoa(610000 + 10*(os.Getpid()%10000) + i)
			result := filepath.Join(t.TempDir(), "result.json")
			cmd := exec.Command(cliBin, "run", "--memory", "64M", "--best-effort", "--result", result,
				"--", "/bin/sh", "-c", "setsid sleep "+marker+" & sleep "+marker)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 300 && countProcs("sleep "+marker) < 2; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			if n := countProcs("sleep " + marker); n < 2 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("expected 2 sleeps inside, saw %d", n)
			}
			groups := brokerGroups(cmd.Process.Pid)
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("airlock exited 0 after %v", sig)
				}
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("airlock still running 5 s after %v", sig)
			}
			b, err := os.ReadFile(result)
			if err != nil || !bytes.Contains(b, []byte(`"status": "Signaled"`)) {
				t.Errorf("result after %v: %s (%v)", sig, b, err)
			}
			if n := countProcs("sleep " + marker); n != 0 {
				t.Errorf("%d sandboxed processes outlived the run", n)
			}
			for _, g := range groups {
				if _, err := os.Stat(g); err == nil {
					t.Errorf("cgroup %s left behind", g)
				}
			}
		})
	}
}

// brokerGroups lists the cgroup directories that broker pid made (none
// where this user cannot make cgroups).
func brokerGroups(pid int) []string {
	own, _ := os.ReadFile("/proc/self/cgroup")
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			if ctrl == "" {
				ctrl = "unified"
			}
			m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctrl, f[2], fmt.Sprintf("airlock-%d-*", pid)))
			out = append(out, m...)
		}
	}
	return out
}

// countProcs counts host processes whose command line is exactly cmdline.
func countProcs(cmdline string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ") == cmdline {
			n++
		}
	}
	return n
}

// Nothing is left behind after normal, killed, timed-out and failed runs.
func TestNoLeftovers(t *testing.T) {
	mountsBefore, _ := os.ReadFile("/proc/self/mountinfo")
	// A temporary directory of this test's own: other test processes
	// (packages run in parallel) make and remove theirs in /tmp meanwhile.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	p := airlock.DefaultPolicy()
	marker := "sleep " + strconv.Itoa(700000+os.Getpid()%10000)
	run(t, p, "true")
	run(t, p, marker+" & kill -9 $$")
	p2 := p
	p2.Limits.WallTime = 100 * time.Millisecond
	run(t, p2, marker+" & "+marker)
	p3 := p
	p3.Mounts = append(p3.Mounts, airlock.ReadOnly("/nonexistent-source", "/x"))
	airlock.Command(p3, "true").Run()
	airlock.Command(p, "/nonexistent-program").Run()
	time.Sleep(100 * time.Millisecond)
	if n := countProcs(marker); n != 0 {
		t.Errorf("%d sandboxed processes remain", n)
	}
	if mountsAfter, _ := os.ReadFile("/proc/self/mountinfo"); !bytes.Equal(mountsBefore, mountsAfter) {
		t.Errorf("host mounts changed")
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCLIErrors(t *testing.T) {
	if cliBin == "" {
		t.Fatal("the CLI did not build")
	}
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "--bogus", "--", "true"}, 125, "-bogus"},
		{[]string{"run", "--memory", "lots", "--", "true"}, 125, "lots"},
		{[]string{"run", "--ro", "/nonexistent-dir-x", "--", "true"}, 125, "/nonexistent-dir-x"},
		{[]string{"run", "--", "/nonexistent-program"}, 127, "/nonexistent-program"},
		{[]string{"run", "--policy", "/nonexistent.toml", "--", "true"}, 125, "nonexistent.toml"},
		{[]string{"run", "--", "sh", "-c", "exit 7"}, 7, ""},
		{[]string{"run", "--", "sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		// From a bad-input review: each of these ran (as host root, without
		// its policy file or limit, with the network on), panicked or hung.
		{[]string{"run", "--uid", "4294967296", "--", "true"}, 125, "4294967296"},
		{[]string{"run", "--gid", "4294967296", "--", "true"}, 125, "4294967296"},
		{[]string{"run", "-policy=/nonexistent.toml", "--", "true"}, 125, "nonexistent.toml"},
		{[]string{"run", "--policy", "/nonexistent.toml", "--policy", "/etc/hostname", "--", "true"}, 125, "more than once"},
		{[]string{"run", "--net", "none", "--net", "allow=x.example", "--", "true"}, 125, "allow=x.example"},
		{[]string{"run", "--cpus", "nan", "--", "true"}, 125, "nan"},
		{[]string{"run", "--cpus", "1e308", "--", "true"}, 125, "cpus"},
		{[]string{"run", "--memory", "1e30", "--", "true"}, 125, "1e30"},
		{[]string{"run", "--memory", "0.0000001", "--", "true"}, 125, "0.0000001"},
		{[]string{"run", "--policy", "/dev/zero", "--", "true"}, 125, "/dev/zero"},
		{[]string{"run", "--syscalls", "deny=execve", "--", "true"}, 125, "execve"},
		{[]string{"run", "--result", "/nonexistent-dir-x/r.json", "--", "touch", "/tmp/ran"}, 125, "/nonexistent-dir-x/r.json"},
		{[]string{"bogus"}, 125, "bogus"},
		{[]string{"check", "--bogus"}, 125, "-bogus"},
		{[]string{"run", "--syscalls", "deny=nosuch", "--", "true"}, 125, "nosuch"},
		{[]string{"run", "--publish", "127.0.0.1:8080", "--", "true"}, 125, "HOSTPORT:SANDBOXPORT"},
		{[]string{"run", "--cpu-time", "1e30", "--", "true"}, 125, "too long"},
		{[]string{"run", "--net", "allow=http://x.example", "--", "true"}, 125, "a URL"},
		{[]string{"run", "--hostname", "a\x1b[2Jb", "--", "true"}, 125, "hostname"},
	}
	// doubled finds a stage named twice in a row ("seccomp: seccomp: ...").
	doubled := func(msg string) string {
		parts := strings.Split(msg, ": ")
		for i := 1; i < len(parts); i++ {
			if parts[i] == parts[i-1] {
				return parts[i]
			}
		}
		return ""
	}
	for _, tc := range cases {
		// A hang fails the case, not the suite.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, cliBin, tc.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		cancel()
		if got := cmd.ProcessState.ExitCode(); got != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, got, tc.code, stderr.String())
		}
		if tc.msg != "" && (!strings.Contains(stderr.String(), tc.msg) || strings.Count(strings.TrimSpace(stderr.String()), "\n") > 0) {
			t.Errorf("%v: want one line naming %q, got %q", tc.args, tc.msg, stderr.String())
		}
		if m := doubled(stderr.String()); m != "" {
			t.Errorf("%v: %q says the stage twice: %q", tc.args, m, stderr.String())
		}
	}
	dir := t.TempDir()
	for body, want := range map[string]string{
		"[limits]\nmemroy = \"1G\"\n":                           "memroy",
		"[limits]\nprocs = -5\n":                                "procs -5",
		"[linux]\nhost_uid = 4294967296\n":                      "4294967296",
		"[network]\nmode = \"none\"\nallow = [\"x.example\"]\n": "allow list",
	} {
		bad := filepath.Join(dir, "bad.toml")
		os.WriteFile(bad, []byte(body), 0o644)
		out, err := exec.Command(cliBin, "run", "--policy", bad, "--", "true").CombinedOutput()
		if !strings.Contains(string(out), want) || err == nil {
			t.Errorf("policy %q: want an error naming %q, got %v: %s", body, want, err, out)
		}
	}
	// A bind source that is a symlink is refused by name: the launcher
	// does not follow it (it could change between check and mount).
	link := filepath.Join(dir, "link")
	os.Symlink(dir, link)
	if out, err := exec.Command(cliBin, "run", "--ro", link, "--", "true").CombinedOutput(); err == nil || !strings.Contains(string(out), "a symlink") {
		t.Errorf("--ro on a symlink: %v: %s", err, out)
	}
	// exec says a script with a missing interpreter is itself missing.
	script := filepath.Join(dir, "bad-interp.sh")
	os.WriteFile(script, []byte("#!/nonexistent/interp\necho hi\n"), 0o755)
	os.Chmod(dir, 0o755)
	cmd := exec.Command(cliBin, "run", "--ro", dir, "--", script)
	if out, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 127 || !strings.Contains(string(out), "interpreter /nonexistent/interp") {
		t.Errorf("script with a missing interpreter: exit %d: %s", cmd.ProcessState.ExitCode(), out)
	}
	fifo := filepath.Join(dir, "fifo.toml")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd = exec.CommandContext(ctx, cliBin, "run", "--policy", fifo, "--", "true")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not a regular file") {
		t.Errorf("policy from a FIFO: %v: %s", err, out)
	}
}

// With user namespaces disabled, run and check say so and how to fix it.
func TestUserNamespacesDisabledExplained(t *testing.T) {
	if cliBin == "" {
		t.Fatal("the CLI did not build")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("util-linux unshare is not installed: cannot make a user namespace with the limit set to 0")
	}
	// max_user_namespaces is per user namespace: set it to 0 in a child one.
	out, _ := exec.Command("unshare", "-Ur", "sh", "-c",
		"echo 0 > /proc/sys/user/max_user_namespaces && "+cliBin+" run -- true; echo rc=$?; "+cliBin+" check; echo rc=$?").CombinedOutput()
	s := string(out)
	for _, want := range []string{"max_user_namespaces = 0", "sysctl -w user.max_user_namespaces", "rc=125", "MISSING user namespaces", "rc=1"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// A terminal among stdio becomes a pseudo-terminal made inside the sandbox:
// ttyname resolves there, the caller's window size carries over, input
// typed on the caller's terminal reaches the target and its output comes
// back (TestTIOCSTIIntoCallerTerminal shows it is not the caller's).
func TestTerminalInsideSandbox(t *testing.T) {
	m, s := callerTerminal(t)
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101})
	out := readTerminal(m, func(s string) bool { return strings.Contains(s, "END") }, nil)
	go func() {
		time.Sleep(300 * time.Millisecond)
		m.Write([]byte("typed-line\n"))
	}()
	cmd := airlock.Command(policy(t), "/bin/sh", "-c",
		`t=$(tty); echo "tty=$t"; [ -c "$t" ] && echo "node=yes"; echo "size=$(stty size)"; read l; echo "got=$l"; echo END; exit 7`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	err := cmd.Run()
	var ee *airlock.ExitError
	if !errors.As(err, &ee) || cmd.Result.ExitCode != 7 {
		t.Fatalf("run: %v (result %+v)", err, cmd.Result)
	}
	var got string
	select {
	case got = <-out:
	case <-time.After(5 * time.Second):
		t.Fatal("no output on the caller's terminal")
	}
	for _, want := range []string{"tty=/dev/pts/", "node=yes", "size=33 101", "got=typed-line"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, got)
		}
	}
}

// A resize of the caller's terminal reaches the sandbox's (SIGWINCH).
func TestTerminalResize(t *testing.T) {
	m, s := callerTerminal(t)
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 10, Col: 20})
	resized := false
	out := readTerminal(m, func(got string) bool {
		return strings.Contains(got, "after=") && strings.Contains(got, "END")
	}, func(got string) {
		if strings.Contains(got, "ready") && !resized {
			resized = true
			unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 160})
			syscall.Kill(os.Getpid(), syscall.SIGWINCH)
		}
	})
	cmd := airlock.Command(policy(t), "/bin/sh", "-c",
		`echo "before=$(stty size)"; echo ready; i=0; while [ "$(stty size)" = "10 20" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; echo "after=$(stty size)"; echo END`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	got := <-out
	if !strings.Contains(got, "before=10 20") || !strings.Contains(got, "after=50 160") {
		t.Errorf("window size not followed:\n%s", got)
	}
}

// With only stdin a terminal, what the target writes to its terminal comes
// back on that terminal, and a target writing a lot there never blocks.
func TestTerminalStdinOnly(t *testing.T) {
	m, s := callerTerminal(t)
	got := readTerminal(m, func(s string) bool { return strings.Contains(s, "END") }, nil)
	var out strings.Builder
	cmd := airlock.Command(policy(t), "/bin/sh", "-c", `head -c 200000 /dev/zero | tr '\0' x > /dev/tty; echo END > /dev/tty; echo done`)
	cmd.Stdin, cmd.Stdout = s, &out
	done := make(chan error)
	go func() { done <- cmd.Run() }()
	select {
	case err := <-done:
		if err != nil || strings.TrimSpace(out.String()) != "done" {
			t.Fatalf("run: %v, stdout %q", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the target blocked writing to its terminal")
	}
	select {
	case g := <-got:
		if strings.Count(g, "x") < 200000 || !strings.Contains(g, "END") {
			t.Errorf("the caller's terminal got %d x's and END=%v", strings.Count(g, "x"), strings.Contains(g, "END"))
		}
	case <-time.After(5 * time.Second):
		t.Error("nothing came back on the caller's terminal")
	}
}
