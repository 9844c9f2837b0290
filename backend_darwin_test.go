package airlock

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock/internal/darwin"
)

// These run only on a Mac (see docs/macos.md). Each attack's effect is
// checked from outside the sandbox.

// init, not TestMain: the test binary must act as the launcher when
// re-executed, before any test runs.
func init() { darwin.MaybeRunLauncher() }

func macPolicy(t *testing.T) Policy {
	t.Helper()
	if _, err := os.Stat(darwin.SandboxExec); err != nil {
		t.Skip("needs /usr/bin/sandbox-exec")
	}
	return Policy{
		Mounts:  []Mount{ReadOnly("/usr", ""), ReadOnly("/bin", "")},
		Env:     []string{"PATH=/usr/bin:/bin"},
		Enforce: Strict,
	}
}

// hostDir is a directory outside the default temp dir's grants.
func hostDir(t *testing.T) string {
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDarwinReadOutsideGrantsDenied(t *testing.T) {
	p := macPolicy(t)
	canary := filepath.Join(hostDir(t), "canary")
	os.WriteFile(canary, []byte("SECRET-CANARY"), 0o600)
	out, err := Command(p, "/bin/cat", canary).CombinedOutput()
	if err == nil || bytes.Contains(out, []byte("SECRET-CANARY")) {
		t.Fatalf("read outside the grants succeeded: %v %q", err, out)
	}
}

func TestDarwinReadOnlyGrantNotWritable(t *testing.T) {
	p := macPolicy(t)
	d := hostDir(t)
	p.Mounts = append(p.Mounts, ReadOnly(d, ""))
	Command(p, "/bin/sh", "-c", `echo x > "$0/new"; echo y >> "$0/old"`, d).Run()
	if _, err := os.Stat(filepath.Join(d, "new")); err == nil {
		t.Error("file created in a read-only grant")
	}
	os.WriteFile(filepath.Join(d, "old"), []byte("keep"), 0o644)
	Command(p, "/bin/sh", "-c", `echo y >> "$0/old"`, d).Run()
	if b, _ := os.ReadFile(filepath.Join(d, "old")); string(b) != "keep" {
		t.Errorf("read-only file changed to %q", b)
	}
}

func TestDarwinCredentialsDeniedInsideGrant(t *testing.T) {
	p := macPolicy(t)
	home := hostDir(t)
	t.Setenv("HOME", home)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "id_test"), []byte("SECRET-KEY"), 0o600)
	p.Mounts = append(p.Mounts, ReadWrite(home, ""))
	out, _ := Command(p, "/bin/sh", "-c", `cat "$0/.ssh/id_test"; mv "$0/.ssh" "$0/moved"; echo k >> "$0/.ssh/authorized_keys"`, home).CombinedOutput()
	if bytes.Contains(out, []byte("SECRET-KEY")) {
		t.Error("credential read through a read-write grant of its parent")
	}
	if _, err := os.Stat(filepath.Join(home, ".ssh", "id_test")); err != nil {
		t.Error("credential directory was moved or removed:", err)
	}
	if _, err := os.Stat(filepath.Join(home, ".ssh", "authorized_keys")); err == nil {
		t.Error("authorized_keys written")
	}
}

func TestDarwinTrickyPathGrant(t *testing.T) {
	p := macPolicy(t)
	base := hostDir(t)
	d := filepath.Join(base, `a b")(allow default)(`)
	os.Mkdir(d, 0o755)
	os.WriteFile(filepath.Join(d, "f"), []byte("inside"), 0o644)
	os.WriteFile(filepath.Join(base, "sibling"), []byte("SIBLING"), 0o644)
	p.Mounts = append(p.Mounts, ReadOnly(d, ""))
	out, err := Command(p, "/bin/cat", filepath.Join(d, "f")).Output()
	if err != nil || string(out) != "inside" {
		t.Errorf("granted file: %v %q", err, out)
	}
	out, _ = Command(p, "/bin/cat", filepath.Join(base, "sibling")).CombinedOutput()
	if bytes.Contains(out, []byte("SIBLING")) {
		t.Error("a tricky path name widened the grant")
	}
}

func TestDarwinNoNetwork(t *testing.T) {
	p := macPolicy(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan bool, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		got <- err == nil
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	Command(p, "/usr/bin/nc", "-z", "-w", "2", "127.0.0.1", port).Run()
	ln.Close()
	if <-got {
		t.Error("the listener saw a connection from the sandbox")
	}
}

func TestDarwinNoForkWithProcs1(t *testing.T) {
	p := macPolicy(t)
	d := hostDir(t)
	p.Mounts = append(p.Mounts, ReadWrite(d, ""))
	p.Limits.Procs = 1
	cmd := Command(p, "/bin/sh", "-c", `/usr/bin/touch "$0/child"`, d)
	cmd.Run()
	if _, err := os.Stat(filepath.Join(d, "child")); err == nil {
		t.Error("a child process ran with procs=1")
	}
	if pr, _ := cmd.Result.Enforced.Lookup("processes"); pr.State != Enforced {
		t.Errorf("processes = %+v", pr)
	}
}

func TestDarwinTreeKilledAtWallTime(t *testing.T) {
	p := macPolicy(t)
	d := hostDir(t)
	p.Mounts = append(p.Mounts, ReadWrite(d, ""))
	p.Limits.WallTime = time.Second
	cmd := Command(p, "/bin/sh", "-c", `/bin/sleep 60 & echo $! > "$0/pid"; wait`, d)
	cmd.Run()
	if cmd.Result.Status != WallTimeLimit {
		t.Errorf("status %s", cmd.Result.Status)
	}
	b, err := os.ReadFile(filepath.Join(d, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	time.Sleep(100 * time.Millisecond) // SIGKILL delivery is asynchronous
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Error("a background child survived the kill")
	}
}

func TestDarwinFileSizeLimit(t *testing.T) {
	p := macPolicy(t)
	d := hostDir(t)
	p.Mounts = append(p.Mounts, ReadWrite(d, ""))
	p.Limits.FileSize = 64 << 10
	cmd := Command(p, "/bin/dd", "if=/dev/zero", "of="+filepath.Join(d, "big"), "bs=1024", "count=1024")
	cmd.Run()
	if cmd.Result.Status != FileSizeLimit {
		t.Errorf("status %s (%s)", cmd.Result.Status, cmd.Result.Error)
	}
	if fi, err := os.Stat(filepath.Join(d, "big")); err == nil && fi.Size() > 64<<10 {
		t.Errorf("file grew to %d bytes", fi.Size())
	}
}

func TestDarwinMemoryLimitStrictFails(t *testing.T) {
	p := macPolicy(t)
	p.Limits.Memory = 256 << 20
	err := Command(p, "/usr/bin/true").Run()
	var se *SetupError
	if !errors.As(err, &se) || !errors.Is(err, ErrNotEnforceable) {
		t.Errorf("err = %v, want a SetupError wrapping ErrNotEnforceable", err)
	}
}
