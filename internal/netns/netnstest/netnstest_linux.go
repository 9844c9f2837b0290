package netnstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/airlock-sandbox/airlock/internal/netns"
	"golang.org/x/sys/unix"
)

const (
	envRole     = "AIRLOCK_NETNSTEST_ROLE"
	envScenario = "AIRLOCK_NETNSTEST_SCENARIO"
	envConfig   = "AIRLOCK_NETNSTEST_CONFIG"
)

var scenarios = map[string]func() any{}

// Register names a client scenario; call it from init or TestMain before Dispatch.
func Register(name string, f func() any) { scenarios[name] = f }

// Dispatch must be called first in TestMain: it turns this process into the
// helper or the sandbox when the test binary was re-executed as one.
func Dispatch() {
	if len(os.Args) > 1 && os.Args[1] == netns.HelperArg {
		netns.HelperMain()
	}
	if os.Getenv(envRole) != "sandbox" {
		return
	}
	os.Exit(sandbox())
}

// sandbox runs inside the new namespaces with the broker socket on fd 3.
func sandbox() int {
	var cfg netns.Config
	if err := json.Unmarshal([]byte(os.Getenv(envConfig)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox: config:", err)
		return 2
	}
	helper := exec.Command(os.Args[0], netns.HelperArgs(cfg)...)
	helper.ExtraFiles = []*os.File{os.NewFile(3, "broker")}
	helper.Stderr = os.Stderr
	helper.Env = []string{}
	if err := helper.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox: helper:", err)
		return 3
	}
	unix.Close(3) // the target never holds the broker socket
	f := scenarios[os.Getenv(envScenario)]
	if f == nil {
		fmt.Fprintln(os.Stderr, "sandbox: unknown scenario")
		return 4
	}
	if err := json.NewEncoder(os.Stdout).Encode(f()); err != nil {
		return 5
	}
	return 0
}

// Sandbox is a running sandbox process.
type Sandbox struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// Start creates the namespaces, runs the helper in them and returns the
// sockets it made. The scenario runs as soon as the helper has exited, with
// env added to its environment.
func Start(t testing.TB, cfg netns.Config, scenario string, env ...string) (*netns.Listeners, *Sandbox) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	broker, child := os.NewFile(uintptr(fds[0]), "broker"), os.NewFile(uintptr(fds[1]), "child")
	defer broker.Close()
	cj, _ := json.Marshal(cfg)
	sb := &Sandbox{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	sb.cmd.Env = []string{envRole + "=sandbox", envScenario + "=" + scenario, envConfig + "=" + string(cj)}
	sb.cmd.Env = append(sb.cmd.Env, env...)
	sb.cmd.ExtraFiles = []*os.File{child}
	sb.cmd.Stdout, sb.cmd.Stderr = &sb.stdout, &sb.stderr
	sb.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	if err := sb.cmd.Start(); err != nil {
		child.Close()
		t.Skipf("host feature missing: unprivileged user+network namespaces: %v", err)
	}
	child.Close()
	l, err := netns.ReceiveListeners(broker)
	if err != nil {
		sb.cmd.Process.Kill()
		sb.cmd.Wait()
		t.Fatalf("ReceiveListeners: %v\nsandbox stderr: %s", err, sb.stderr.String())
	}
	t.Cleanup(func() { l.Close() })
	return l, sb
}

// Wait waits for the scenario and decodes its JSON result into out.
func (sb *Sandbox) Wait(t testing.TB, out any) {
	t.Helper()
	if err := sb.cmd.Wait(); err != nil {
		t.Fatalf("sandbox: %v\nstderr: %s", err, sb.stderr.String())
	}
	if err := json.Unmarshal(sb.stdout.Bytes(), out); err != nil {
		t.Fatalf("sandbox result %q: %v\nstderr: %s", sb.stdout.String(), err, sb.stderr.String())
	}
}

// Kill stops the sandbox (for cleanup after a failed test).
func (sb *Sandbox) Kill() {
	if sb.cmd.ProcessState == nil {
		sb.cmd.Process.Kill()
		sb.cmd.Wait()
	}
}
