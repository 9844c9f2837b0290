package airlock

// Tests of the Windows backend on Windows itself. The confinement tests
// run only where AppContainer is in force (real Windows 10/11); under
// Wine they skip naming the missing mechanism. See docs/windows.md.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xwin "golang.org/x/sys/windows"
)

func winPolicy(t *testing.T, enforce Enforcement, mounts ...Mount) Policy {
	sys := os.Getenv("SystemRoot")
	return Policy{Mounts: mounts, Enforce: enforce,
		Env: []string{`PATH=` + sys + `\system32;` + sys, "SystemRoot=" + sys, "COMSPEC=" + sys + `\system32\cmd.exe`}}
}

func cmdExe() string { return filepath.Join(os.Getenv("SystemRoot"), "system32", "cmd.exe") }

func appContainer(t *testing.T) {
	t.Helper()
	if f, _ := Probe().Lookup("appcontainer"); !f.Available {
		t.Skip("host lacks AppContainer (userenv.dll CreateAppContainerProfile): confinement cannot be tested")
	}
}

func TestWindowsSpec(t *testing.T) {
	dir := filepath.Join(os.Getenv("SystemRoot"), "system32")
	l := &launch{Policy: winPolicy(t, Strict, ReadOnly(dir, dir), ReadWrite(dir, `C:\elsewhere`), Tmpfs(`C:\tmp`, 0)),
		Path: "cmd", Args: []string{"cmd"}, Dir: "/"}
	l.Env = l.Policy.Env
	s, err := windowsSpec(l)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(s.Program, cmdExe()) || len(s.Binds) != 2 || len(s.Unmapped) != 1 || !strings.EqualFold(s.Dir, os.Getenv("SystemRoot")) {
		t.Errorf("spec %+v", s)
	}
	l.Policy.Workdir = ""
	c := Command(l.Policy, "cmd")
	err = c.Run()
	var se *SetupError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "destination must equal source") {
		t.Errorf("moved bind: %v", err)
	}
}

func TestWindowsExitAndStdio(t *testing.T) {
	c := Command(winPolicy(t, BestEffort), "cmd", "/c", "echo out& echo err 1>&2& exit 3")
	var so, se bytes.Buffer
	c.Stdout, c.Stderr = &so, &se
	c.Run()
	if c.Result.Status != NonZeroExit || c.Result.ExitCode != 3 || !strings.Contains(so.String(), "out") || !strings.Contains(se.String(), "err") {
		t.Errorf("result %+v stdout %q stderr %q", c.Result, so.String(), se.String())
	}
}

func TestWindowsStrictFallback(t *testing.T) {
	if f, _ := Probe().Lookup("appcontainer"); f.Available {
		t.Skip("AppContainer is available: the fallback path is not taken on this host")
	}
	err := Command(winPolicy(t, Strict), "cmd", "/c", "exit 0").Run()
	if !errors.Is(err, ErrNotEnforceable) {
		t.Errorf("strict without AppContainer: %v", err)
	}
}

// Attack: read a secret from the user's temp directory, which is in the
// profile and not granted. The output must not contain it.
func TestWindowsSecretUnreadable(t *testing.T) {
	appContainer(t)
	secret := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(secret, []byte("CANARY-7f3a"), 0o600)
	c := Command(winPolicy(t, Strict), "cmd", "/c", "type "+secret)
	out, _ := c.CombinedOutput()
	if bytes.Contains(out, []byte("CANARY-7f3a")) {
		t.Fatalf("the sandbox read an ungranted file: %q", out)
	}
	if p, _ := c.Result.Enforced.Lookup("filesystem"); p.State != Enforced {
		t.Errorf("filesystem %+v", p)
	}
}

// Attack: write into a read-only grant and outside any grant; then check
// the files from outside and that the directory's DACL was restored.
func TestWindowsWriteConfined(t *testing.T) {
	appContainer(t)
	ro, rw := t.TempDir(), t.TempDir()
	before := func(p string) string {
		sd, err := xwin.GetNamedSecurityInfo(p, xwin.SE_FILE_OBJECT, xwin.DACL_SECURITY_INFORMATION)
		if err != nil {
			t.Fatal(err)
		}
		return sd.String()
	}
	roDACL, rwDACL := before(ro), before(rw)
	script := "echo x> " + filepath.Join(ro, "a") + "& echo x> " + filepath.Join(rw, "b")
	c := Command(winPolicy(t, Strict, ReadOnly(ro, ""), ReadWrite(rw, "")), "cmd", "/c", script)
	c.Run()
	if _, err := os.Stat(filepath.Join(ro, "a")); err == nil {
		t.Error("wrote into a read-only grant")
	}
	if _, err := os.Stat(filepath.Join(rw, "b")); err != nil {
		t.Errorf("could not write into a read-write grant: %v (result %+v)", err, c.Result)
	}
	if before(ro) != roDACL || before(rw) != rwDACL {
		t.Errorf("DACLs not restored:\n%s\n%s", before(ro), before(rw))
	}
}
