//go:build linux

package darwin

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	MaybeRunLauncher()
	os.Exit(m.Run())
}

// runLauncherCmd re-executes the test binary as the launcher (the rlimit
// code is the same on Linux and macOS) and returns its error pipe text.
func runLauncherCmd(t *testing.T, rl []Rlimit, argv ...string) (*exec.Cmd, string, error) {
	t.Helper()
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], LauncherArgs(rl, argv)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{ew}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ew.Close()
	msg, _ := io.ReadAll(er)
	er.Close()
	err = cmd.Wait()
	t.Logf("output: %s", out.String())
	return cmd, string(msg), err
}

// TestLauncherFileSizeLimit: a writer past RLIMIT_FSIZE is stopped; the
// file on disk, checked from outside, is no larger than the limit.
func TestLauncherFileSizeLimit(t *testing.T) {
	f := filepath.Join(t.TempDir(), "big")
	cmd, msg, err := runLauncherCmd(t, []Rlimit{{"fsize", 8192, 8192}, {"core", 0, 0}},
		"/bin/sh", "-c", `exec dd if=/dev/zero of="$0" bs=1024 count=64`, f)
	if msg != "" {
		t.Fatalf("launcher failed: %s", msg)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGXFSZ {
		t.Errorf("writer not stopped by SIGXFSZ: %v", err)
	}
	fi, err := os.Stat(f)
	if err != nil || fi.Size() > 8192 {
		t.Errorf("file grew past the limit: %v %v", fi.Size(), err)
	}
}

// TestLauncherOpenFiles: the limit reaches the exec'd program (the Go
// runtime's saved RLIMIT_NOFILE must not be restored on exec).
func TestLauncherOpenFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "n")
	_, msg, err := runLauncherCmd(t, []Rlimit{{"nofile", 17, 17}}, "/bin/sh", "-c", `ulimit -n > "$0"`, out)
	if msg != "" || err != nil {
		t.Fatalf("launcher: %q %v", msg, err)
	}
	b, _ := os.ReadFile(out)
	if strings.TrimSpace(string(b)) != "17" {
		t.Errorf("ulimit -n in the target = %q, want 17", b)
	}
}

func TestLauncherReportsFailure(t *testing.T) {
	for _, tc := range []struct {
		rl   []Rlimit
		argv []string
		want string
	}{
		{[]Rlimit{{"bogus", 1, 1}}, []string{"/bin/true"}, "unknown limit"},
		{nil, []string{"/nonexistent/prog"}, "no such file"},
		{[]Rlimit{{"nofile", 10, 5}}, []string{"/bin/true"}, "setrlimit nofile"},
	} {
		cmd, msg, _ := runLauncherCmd(t, tc.rl, tc.argv...)
		if !strings.Contains(msg, tc.want) || cmd.ProcessState.ExitCode() != 125 {
			t.Errorf("%v %v: message %q exit %d, want %q and 125", tc.rl, tc.argv, msg, cmd.ProcessState.ExitCode(), tc.want)
		}
	}
}
