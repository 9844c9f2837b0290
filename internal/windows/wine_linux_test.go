package windows

// Plumbing smoke test of the Windows backend under Wine: process start,
// exit codes, stdio, argument quoting, the explicit environment, job
// kill-tree, wall timeout and the AppContainer-unavailable fallback. Wine
// enforces no Windows security, so this proves plumbing, not confinement.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const wineInstall = "apt-get install -y wine wine64 gcc-mingw-w64-x86-64-win32"

type wineLine struct {
	Scenario string `json:"scenario"`
	Err      string `json:"err"`
	NotEnf   bool   `json:"not_enforceable"`
	Result   *struct {
		Status   string `json:"status"`
		ExitCode int    `json:"exit_code"`
		Enforced []struct {
			Name, State, Mechanism, Detail string
		} `json:"enforced"`
	} `json:"result"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Alive    []int  `json:"alive"`
	Pids     []int  `json:"pids"`
	Features *struct {
		Items []struct {
			Name      string `json:"name"`
			Available bool   `json:"available"`
		} `json:"features"`
	} `json:"features"`
}

func (l wineLine) state(name string) string {
	if l.Result == nil {
		return ""
	}
	for _, p := range l.Result.Enforced {
		if p.Name == name {
			return p.State
		}
	}
	return ""
}

func TestWineSmoke(t *testing.T) {
	dir, run := wineEnv(t, map[string]string{"driver.exe": "./testdata/driver", "target.exe": "./testdata/target",
		"root.test.exe": "../..", "internal.test.exe": "."})
	const wine = "wine"
	// sh runs a Windows program under Wine and returns its combined output.
	sh := func(_ string, args ...string) ([]byte, error) {
		var out bytes.Buffer
		err := run(&out, &out, args...)
		return out.Bytes(), err
	}

	winTarget := `Z:` + strings.ReplaceAll(filepath.Join(dir, "target.exe"), "/", `\`)
	out, err := sh(wine, filepath.Join(dir, "driver.exe"), winTarget)
	if err != nil {
		t.Fatalf("driver under Wine: %v\n%s", err, out)
	}
	// backend_windows_test.go: plumbing passes, confinement tests skip.
	rout, err := sh(wine, filepath.Join(dir, "root.test.exe"), "-test.run", "^TestWindows", "-test.v")
	if err != nil {
		t.Errorf("backend_windows_test.go under Wine: %v\n%s", err, rout)
	}
	for _, want := range []string{"--- PASS: TestWindowsSpec", "--- PASS: TestWindowsExitAndStdio", "--- PASS: TestWindowsStrictFallback",
		"--- SKIP: TestWindowsSecretUnreadable", "--- SKIP: TestWindowsWriteConfined"} {
		if !bytes.Contains(rout, []byte(want)) {
			t.Errorf("backend_windows_test.go under Wine: no %q in\n%s", want, rout)
		}
	}
	iout, err := sh(wine, filepath.Join(dir, "internal.test.exe"), "-test.run", "^(TestNamedDACLStoreGrantRevoke|TestAliveSelf)$", "-test.v")
	if err != nil || !bytes.Contains(iout, []byte("--- PASS: TestAliveSelf")) || bytes.Contains(iout, []byte("--- FAIL")) {
		t.Errorf("internal/windows Windows tests under Wine: %v\n%s", err, iout)
	}
	t.Logf("real DACL store under Wine:\n%s", iout)
	got := map[string]wineLine{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l wineLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Scenario != "" {
			got[l.Scenario] = l
		}
	}
	for _, s := range []string{"probe", "strict", "exit", "ok", "procs1", "args", "env", "stdin", "wall-tree", "tree-exit"} {
		if _, ok := got[s]; !ok {
			t.Fatalf("scenario %s missing from driver output:\n%s", s, out)
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("driver output:\n%s", out)
		}
	}()

	// Wine lacks AppContainer: probe says so, strict refuses, best-effort
	// runs on the restricted-token fallback and reports it.
	for _, f := range got["probe"].Features.Items {
		if f.Name == "appcontainer" && f.Available {
			t.Errorf("probe claims AppContainer under Wine; the fallback path is not exercised")
		}
	}
	if l := got["strict"]; !l.NotEnf || l.Result == nil || l.Result.Status != "SetupError" || !strings.Contains(l.Err, "AppContainer unavailable") {
		t.Errorf("strict policy without AppContainer: err %q, not-enforceable %v", l.Err, l.NotEnf)
	}
	for _, s := range []string{"exit", "ok", "procs1", "args", "env", "stdin"} {
		l := got[s]
		if l.Err != "" || l.Result == nil {
			t.Errorf("%s: error %q", s, l.Err)
			continue
		}
		if l.state("filesystem") != "degraded" || l.state("network") != "off" || l.state("kill-tree") != "enforced" {
			t.Errorf("%s: fallback report fs=%s net=%s kill=%s", s, l.state("filesystem"), l.state("network"), l.state("kill-tree"))
		}
	}
	if l := got["exit"]; l.Result.Status != "NonZeroExit" || l.Result.ExitCode != 3 || l.Stdout != "to-stdout" || l.Stderr != "to-stderr" {
		t.Errorf("exit 3: %s %d stdout %q stderr %q", l.Result.Status, l.Result.ExitCode, l.Stdout, l.Stderr)
	}
	for _, s := range []string{"ok", "procs1"} {
		if l := got[s]; l.Result.Status != "OK" || l.Result.ExitCode != 0 || l.Stdout != "to-stdout" {
			t.Errorf("%s: %s %d stdout %q", s, l.Result.Status, l.Result.ExitCode, l.Stdout)
		}
	}
	var args []string
	json.Unmarshal([]byte(got["args"].Stdout), &args)
	if want := []string{"", "a b", `x\"y`, `tail\`, `"q"`, `C:\dir with space\`}; !reflect.DeepEqual(args, want) {
		t.Errorf("args arrived as %q, want %q", args, want)
	}
	var envOut []string
	json.Unmarshal([]byte(got["env"].Stdout), &envOut)
	have := map[string]bool{}
	for _, kv := range envOut {
		k, _, _ := strings.Cut(kv, "=")
		have[strings.ToUpper(k)] = true
		// Wine's loader adds its WINE* variables and SystemDrive itself.
		if !strings.HasPrefix(k, "WINE") && k != "SystemDrive" && k != "LANG" && k != "PATH" && k != "SystemRoot" {
			t.Errorf("unexpected variable in the sandbox: %s", kv)
		}
	}
	if have["AIRLOCK_CANARY"] || !have["LANG"] || !have["PATH"] {
		t.Errorf("environment not explicit: %q", envOut)
	}
	if l := got["stdin"]; l.Stdout != "piped input\n" {
		t.Errorf("stdin round trip: %q", l.Stdout)
	}
	// Kill-tree: the chain of descendants is gone after Wait, both when
	// the wall timeout killed the job and when the first process exited.
	for _, s := range []string{"wall-tree", "tree-exit"} {
		l := got[s]
		// tree-exit prints all three before its first process exits;
		// the wall timeout may strike while the chain still grows.
		if want := 3; len(l.Pids) != want && (s == "tree-exit" || len(l.Pids) == 0) {
			t.Errorf("%s: want %d descendant pids, got %v (stderr %q)", s, want, l.Pids, l.Stderr)
		}
		if len(l.Alive) != 0 {
			t.Errorf("%s: descendants still running after Wait: %v", s, l.Alive)
		}
	}
	// Attack on the broker: it exits without Wait (as if it crashed);
	// kill-on-close must take the whole tree down.
	oout, err := sh(wine, filepath.Join(dir, "driver.exe"), "orphan", winTarget)
	var opids []int
	if errors.Is(err, exec.ErrWaitDelay) {
		t.Errorf("descendants outlived the broker: they still hold its output open\n%s", oout)
	} else if err != nil || json.Unmarshal(lastLine(oout), &opids) != nil || len(opids) != 3 {
		t.Errorf("orphan run: %v, pids %v\n%s", err, opids, oout)
	} else {
		args := []string{filepath.Join(dir, "driver.exe"), "alive"}
		for _, p := range opids {
			args = append(args, strconv.Itoa(p))
		}
		aout, err := sh(wine, args...)
		var live []int
		if err != nil || json.Unmarshal(lastLine(aout), &live) != nil || len(live) != 0 {
			t.Errorf("after the broker exited, descendants %v of %v still run (%v)\n%s", live, opids, err, aout)
		}
	}
	if l := got["wall-tree"]; l.Result.Status != "WallTimeLimit" {
		t.Errorf("wall-tree status %s, want WallTimeLimit", l.Result.Status)
	}
}

// lastLine is the last non-empty line of b (Wine may print notes first).
func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}
