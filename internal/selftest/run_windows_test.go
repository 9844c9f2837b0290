package selftest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-sandbox/airlock"
	"github.com/airlock-sandbox/airlock/internal/probe"
)

// The test binary is also the probe binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "__probe" {
		os.Exit(probe.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func canaries(t *testing.T) []string {
	m, err := filepath.Glob(filepath.Join(os.Getenv("USERPROFILE"), "airlock-selftest-canary-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Bare, each probe's attack works, so each must report ESCAPED; the
// writes and the connection are seen by the host-side oracle.
func TestWindowsBare(t *testing.T) {
	before := len(canaries(t))
	sc, err := Run(Options{Binary: os.Args[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Results) != len(probe.IDs()) || len(sc.Results) == 0 {
		t.Fatalf("%d results for %d probes", len(sc.Results), len(probe.IDs()))
	}
	for _, r := range sc.Results {
		if r.Verdict != Escaped {
			t.Errorf("%s: %s/%s %q %q: the probe misses its own unsandboxed attack", r.ID, r.Verdict, r.Source, r.Evidence, r.Reason)
		}
		if (r.ID == "A9" || r.ID == "F1") && r.Source != "oracle" {
			t.Errorf("%s decided by %s, want the oracle", r.ID, r.Source)
		}
	}
	if n := len(canaries(t)); n != before {
		t.Errorf("%d canary directories left in the profile (were %d)", n, before)
	}
}

// Sandboxed with the default policy, every probe must be BLOCKED. Needs
// AppContainer (real Windows 10/11); the restricted-token fallback is
// refused by the strict default policy.
func TestWindowsSandboxed(t *testing.T) {
	sc, err := Run(Options{Binary: os.Args[0], Sandboxed: true, Only: []string{"A9"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := sc.Results[0]; r.Source == "setup" && strings.Contains(r.Reason, "AppContainer unavailable") {
		t.Skipf("host lacks AppContainer: %s", r.Reason)
	}
	sc, err = Run(Options{Binary: os.Args[0], Sandboxed: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sc.Results {
		if r.Verdict != Blocked {
			t.Errorf("%s: %s/%s %q %q", r.ID, r.Verdict, r.Source, r.Evidence, r.Reason)
		}
	}
}

// policyFor grants the probe directory and the read-only fixture, each
// at its own path, read-only, and nothing that covers the canary. (The
// default policy's Linux system paths stay in; they exist only under Wine.)
func TestWindowsPolicy(t *testing.T) {
	fx, err := setupWin(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer fx.cleanup()
	p := fx.policyFor("G2")
	var grants []string
	for _, m := range p.Mounts {
		if m.Kind != airlock.Bind {
			continue
		}
		if m.Source != m.Dest || m.Writable {
			t.Errorf("grant %s -> %s writable %v", m.Source, m.Dest, m.Writable)
		}
		if within(m.Source, fx.canary) {
			t.Errorf("grant %s covers the canary %s", m.Source, fx.canary)
		}
		grants = append(grants, m.Source)
	}
	if !slices.Contains(grants, fx.binDir) || !slices.Contains(grants, fx.ro) {
		t.Errorf("grants %q lack %s or %s", grants, fx.binDir, fx.ro)
	}
	if p.Limits.Memory != winMemory || p.Enforce != airlock.Strict || p.Network.Mode != airlock.NetNone {
		t.Errorf("policy limits %+v enforce %s net %s", p.Limits, p.Enforce, p.Network.Mode)
	}
	if err := p.Validate(); err != nil && !errors.Is(err, airlock.ErrUnsupported) {
		t.Errorf("policy invalid: %v", err)
	}
}
