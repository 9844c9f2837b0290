package windows

// Plumbing test of `airlock selftest` on Windows, run under Wine: the
// Windows probes are built into airlock.exe, the scorecard is produced and
// has its JSON shape, the CLI's exit code follows it, and the bare,
// strict and best-effort runs of the selftest machinery work. Wine
// enforces no Windows security, so the sandboxed verdicts prove nothing
// about confinement; see docs/windows.md.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// winProbes are the probes internal/probe builds for Windows.
var winProbes = []string{"A9", "B3", "B8", "C2", "E5", "F1", "G1", "G2"}

type stResult struct {
	ID, Category, Title, Verdict, Source, Evidence, Reason string
	Report                                                 *struct {
		ID        string   `json:"id"`
		Attempted []string `json:"attempted"`
	} `json:"report"`
}

type stCard struct {
	Sandboxed *bool      `json:"sandboxed"`
	Results   []stResult `json:"results"`
}

// wineEnv prepares a Wine prefix with the ProcessPrng shim and builds the
// given packages (names ending in .test.exe: their tests) for
// windows/amd64 into dir; run executes a program there.
func wineEnv(t *testing.T, pkgs map[string]string) (dir string, run func(stdout, stderr *bytes.Buffer, args ...string) error) {
	if testing.Short() {
		t.Skip("Wine tests are slow; skipped with -short")
	}
	if runtime.GOARCH != "amd64" {
		t.Skipf("Wine runs x86-64 Windows programs only on an x86-64 host (this is %s)", runtime.GOARCH)
	}
	wine, err := exec.LookPath("wine")
	if err != nil {
		t.Skipf("host lacks Wine (no wine in PATH); install with: %s", wineInstall)
	}
	if _, err := os.Stat("/usr/lib/wine/wine64"); err != nil {
		t.Skipf("host lacks the 64-bit Wine loader /usr/lib/wine/wine64; install with: %s", wineInstall)
	}
	gcc, err := exec.LookPath("x86_64-w64-mingw32-gcc")
	if err != nil {
		t.Skipf("host lacks the mingw-w64 C compiler needed for the ProcessPrng shim; install with: %s", wineInstall)
	}
	dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	env := append(os.Environ(), "HOME="+dir, "TMPDIR="+dir, "WINEPREFIX="+filepath.Join(dir, "prefix"), "WINEDEBUG=-all",
		"WINEDLLOVERRIDES=bcryptprimitives=n;mscoree=;mshtml=", "DISPLAY=")
	t.Cleanup(func() {
		c := exec.Command("wineserver", "-k")
		c.Env = env
		c.Run()
	})
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	benv := append(env, "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if os.Getenv("AIRLOCK_TEST_UNPRIVILEGED") != "" || os.Geteuid() != 0 {
		// The unprivileged user may not write root's caches.
		benv = append(benv, "GOCACHE="+filepath.Join(dir, "gocache"), "GOMODCACHE="+filepath.Join(dir, "gomod"))
		t.Cleanup(func() {
			c := exec.Command(goBin, "clean", "-modcache")
			c.Env = benv
			c.Run()
		})
	}
	for name, pkg := range pkgs {
		verb := []string{"build"}
		if strings.HasSuffix(name, ".test.exe") {
			verb = []string{"test", "-c"}
		}
		c := exec.CommandContext(ctx, goBin, append(verb, "-buildvcs=false", "-o", filepath.Join(dir, name), pkg)...)
		c.Env = benv
		if out, err := c.CombinedOutput(); err != nil {
			if bytes.Contains(out, []byte("dial tcp")) || bytes.Contains(out, []byte("permission denied")) {
				t.Skipf("cannot build the Windows programs as uid %d (module cache unreadable and the module proxy unreachable): %s", os.Geteuid(), out)
			}
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	shim := filepath.Join(dir, "bcryptprimitives.dll")
	if out, err := exec.CommandContext(ctx, gcc, "-shared", "-O2", "-o", shim, "testdata/prng_shim.c", "testdata/prng_shim.def", "-ladvapi32").CombinedOutput(); err != nil {
		t.Fatalf("build ProcessPrng shim: %v\n%s", err, out)
	}
	run = func(stdout, stderr *bytes.Buffer, args ...string) error {
		c := exec.CommandContext(ctx, wine, args...)
		c.Env, c.Dir = env, dir
		c.Stdout, c.Stderr = stdout, stderr
		c.WaitDelay = 10 * time.Second
		return c.Run()
	}
	var o bytes.Buffer
	if err := run(&o, &o, "wineboot", "-i"); err != nil {
		t.Skipf("Wine cannot create a prefix on this host: %v\n%s", err, o.Bytes())
	}
	b, err := os.ReadFile(shim)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "prefix", "drive_c", "windows", "system32", "bcryptprimitives.dll"), b, 0o644)
	}
	if err != nil {
		t.Fatalf("install shim: %v", err)
	}
	return dir, run
}

// checkCard checks the scorecard's shape: each Windows probe once, in
// its category, with a known verdict and who decided it.
func checkCard(t *testing.T, name string, sc *stCard, ids []string, sandboxed bool) {
	t.Helper()
	if sc.Sandboxed == nil || *sc.Sandboxed != sandboxed {
		t.Errorf("%s: sandboxed = %v, want %v", name, sc.Sandboxed, sandboxed)
	}
	var got []string
	for _, r := range sc.Results {
		got = append(got, r.ID)
		if r.Category != strings.ToLower(r.ID[:1]) || r.Title == "" || r.Source == "" {
			t.Errorf("%s: %s: category %q title %q source %q", name, r.ID, r.Category, r.Title, r.Source)
		}
		if !slices.Contains([]string{"BLOCKED", "ESCAPED", "ERROR", "NOT-APPLICABLE"}, r.Verdict) {
			t.Errorf("%s: %s: verdict %q", name, r.ID, r.Verdict)
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("%s: probes %v, want %v", name, got, ids)
	}
}

func TestWineSelftest(t *testing.T) {
	dir, run := wineEnv(t, map[string]string{"airlock.exe": "../../cmd/airlock", "selftest.exe": "./testdata/selftest",
		"selftest.test.exe": "../selftest"})
	defer func() {
		if t.Failed() {
			t.Log("plumbing only: Wine enforces no Windows security")
		}
	}()

	// The CLI: Wine has no AppContainer, so the default (strict) policy
	// is refused for every probe, each is an ERROR naming that, and the
	// exit code is 1.
	var out, errb bytes.Buffer
	err := run(&out, &errb, filepath.Join(dir, "airlock.exe"), "selftest", "--json")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("airlock selftest --json: %v, want exit code 1\nstderr: %s", err, errb.Bytes())
	}
	var sc stCard
	if err := json.Unmarshal(out.Bytes(), &sc); err != nil {
		t.Fatalf("airlock selftest --json printed no scorecard: %v\n%s\nstderr: %s", err, out.Bytes(), errb.Bytes())
	}
	checkCard(t, "cli", &sc, winProbes, true)
	for _, r := range sc.Results {
		if r.Verdict != "ERROR" || r.Source != "setup" || !strings.Contains(r.Reason, "AppContainer unavailable") {
			t.Errorf("cli: %s under Wine's strict refusal: %s/%s %q", r.ID, r.Verdict, r.Source, r.Reason)
		}
	}
	out.Reset()
	errb.Reset()
	if err := run(&out, &errb, filepath.Join(dir, "airlock.exe"), "selftest", "--json", "--only", "f1,B8"); !errors.As(err, &ee) {
		t.Errorf("selftest --only: %v\nstderr: %s", err, errb.Bytes())
	}
	sc = stCard{}
	if err := json.Unmarshal(out.Bytes(), &sc); err != nil {
		t.Fatalf("selftest --only printed no scorecard: %v\n%s", err, out.Bytes())
	}
	checkCard(t, "cli --only", &sc, []string{"B8", "F1"}, true)

	// run_windows_test.go: bare and policy tests pass; the sandboxed
	// test skips, naming AppContainer.
	out.Reset()
	errb.Reset()
	if err := run(&out, &errb, filepath.Join(dir, "selftest.test.exe"), "-test.v"); err != nil {
		t.Errorf("internal/selftest tests under Wine: %v\n%s\nstderr: %s", err, out.Bytes(), errb.Bytes())
	}
	for _, want := range []string{"--- PASS: TestWindowsBare", "--- PASS: TestWindowsPolicy", "--- SKIP: TestWindowsSandboxed"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("internal/selftest tests under Wine: no %q in\n%s", want, out.Bytes())
		}
	}

	// The library through a driver: bare, strict, best-effort.
	out.Reset()
	errb.Reset()
	if err := run(&out, &errb, filepath.Join(dir, "selftest.exe")); err != nil {
		t.Fatalf("selftest driver: %v\n%s\nstderr: %s", err, out.Bytes(), errb.Bytes())
	}
	cards := map[string]*stCard{}
	s := bufio.NewScanner(&out)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		var l struct {
			Mode      string  `json:"mode"`
			Err       string  `json:"err"`
			Scorecard *stCard `json:"scorecard"`
		}
		if json.Unmarshal(s.Bytes(), &l) != nil || l.Mode == "" {
			continue
		}
		if l.Err != "" || l.Scorecard == nil {
			t.Errorf("%s run: %q", l.Mode, l.Err)
			continue
		}
		cards[l.Mode] = l.Scorecard
	}
	for _, m := range []string{"bare", "strict", "best-effort"} {
		if cards[m] == nil {
			t.Fatalf("driver printed no %s scorecard:\n%s\nstderr: %s", m, out.Bytes(), errb.Bytes())
		}
		checkCard(t, m, cards[m], winProbes, m != "bare")
	}
	// Bare, every probe must see its own attack succeed: this validates
	// the probes and oracles (it holds under Wine as on Windows).
	for _, r := range cards["bare"].Results {
		if r.Verdict != "ESCAPED" {
			t.Errorf("bare: %s did not detect its unsandboxed attack: %s/%s %q %q", r.ID, r.Verdict, r.Source, r.Evidence, r.Reason)
		}
	}
	// The oracle, not only the probe, saw the writes and the connection.
	for _, r := range cards["bare"].Results {
		if (r.ID == "A9" || r.ID == "F1") && r.Source != "oracle" {
			t.Errorf("bare: %s decided by %q, want the host-side oracle", r.ID, r.Source)
		}
	}
	// Best-effort runs every probe in the fallback sandbox: each one ran
	// and reported. Verdicts are not checked: Wine enforces nothing.
	for _, r := range cards["best-effort"].Results {
		if r.Source == "setup" || r.Report == nil || r.Report.ID != r.ID || len(r.Report.Attempted) == 0 {
			t.Errorf("best-effort: %s did not run in the sandbox: %s/%s %q", r.ID, r.Verdict, r.Source, r.Reason)
		}
		t.Logf("best-effort under Wine (plumbing only): %s %s by %s: %s", r.ID, r.Verdict, r.Source, r.Evidence)
	}
}
