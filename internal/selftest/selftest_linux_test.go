package selftest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock"
	"github.com/airlock-sandbox/airlock/internal/probe"
	"golang.org/x/sys/unix"
)

// The test binary doubles as the probe binary: `test.bin __probe ID ...`
// runs probe.Main, so the tests need neither the CLI nor a compiler (the
// unprivileged run has no Go toolchain cache of its own).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "__probe" {
		os.Exit(probe.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// probeBinary is the test binary itself (Run works on its own copy).
func probeBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self
}

// hostCondition says why a probe cannot escape on this host even without a
// sandbox, after checking that condition; "" means it must escape.
func hostCondition(id string) string {
	root := os.Geteuid() == 0
	switch id {
	case "A1":
		if !root && !sharedMounts() {
			return "unprivileged user: cannot mount in the host mount namespace, and no host mount has shared propagation"
		}
	case "A7", "A8":
		if !root {
			return "unprivileged user: kernel knobs and cgroupfs are writable by root only"
		}
	case "B5":
		if !root {
			return "unprivileged user: open_by_handle_at needs CAP_DAC_READ_SEARCH"
		}
	case "B7":
		if !root {
			return "unprivileged user: setgroups needs CAP_SETGID, and the kernel forces setgroups=deny in an unprivileged userns"
		}
	case "C7":
		if !root {
			return "unprivileged user: setting the clock needs CAP_SYS_TIME"
		}
	case "E2":
		if !root {
			return "unprivileged user: virtual consoles are root:tty 0620"
		}
	case "A10":
		if fd, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET, 0); err == nil {
			unix.Close(fd)
		} else if errors.Is(err, unix.EAFNOSUPPORT) {
			return "this kernel has no AF_ALG (socket gives EAFNOSUPPORT)"
		}
	case "B4":
		if _, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0); err != nil {
			return "no session keyring for this user: " + err.Error()
		}
	}
	return ""
}

func sharedMounts() bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(b), " shared:")
}

func whoami() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return fmt.Sprintf("uid %d", os.Geteuid())
}

// TestProbesEscapeUnsandboxed validates every probe: run bare, each one
// must see (or make the oracle see) its escape; a probe that cannot detect
// an escape proves nothing.
func TestProbesEscapeUnsandboxed(t *testing.T) {
	sc, err := Run(Options{Binary: probeBinary(t), Sandboxed: false})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sc.Print(&sb)
	t.Logf("as %s:\n%s", whoami(), sb.String())
	if len(sc.Results) < 45 {
		t.Errorf("only %d probes ran, want at least 45", len(sc.Results))
	}
	escaped, excused := 0, 0
	for _, r := range sc.Results {
		switch {
		case r.Verdict == Escaped:
			escaped++
		case r.Verdict == NotApplicable && r.ID == "H1" && os.Geteuid() != 0:
			excused++
			t.Logf("%s not applicable as %s: %s", r.ID, whoami(), r.Reason)
		case hostCondition(r.ID) != "":
			excused++
			t.Logf("%s cannot escape on this host: %s (verdict %s: %s)", r.ID, hostCondition(r.ID), r.Verdict, firstOf(r.Reason, r.Evidence))
		default:
			t.Errorf("%s (%s) did not detect its escape without a sandbox: %s %s: %s", r.ID, r.Title, r.Verdict, r.Source, firstOf(r.Reason, r.Evidence))
		}
	}
	t.Logf("as %s: %d of %d probes escaped unsandboxed, %d excused by host conditions", whoami(), escaped, len(sc.Results), excused)
}

// TestProbesBlockedSandboxed is the selftest proper: every probe blocked
// under the default policy.
func TestProbesBlockedSandboxed(t *testing.T) {
	sc, err := Run(Options{Binary: probeBinary(t), Sandboxed: true})
	if err != nil {
		t.Fatalf("sandboxed selftest could not run (is the Linux backend in place?): %v", err)
	}
	var sb strings.Builder
	sc.Print(&sb)
	t.Logf("as %s:\n%s", whoami(), sb.String())
	for _, r := range sc.Results {
		switch r.Verdict {
		case Blocked, NotApplicable:
		default:
			t.Errorf("%s (%s): %s via %s: %s", r.ID, r.Title, r.Verdict, r.Source, firstOf(r.Reason, r.Evidence))
		}
	}
}

// TestProbesSeeWeakenedSandbox removes one protection at a time and checks
// that the probes for it notice: a sandboxed BLOCKED is only worth something
// if the same probe, in the same sandbox, sees the hole when there is one.
func TestProbesSeeWeakenedSandbox(t *testing.T) {
	cases := []struct {
		name   string
		adjust func(*airlock.Policy)
		want   []string
	}{
		{"host network", func(p *airlock.Policy) { p.Network.Mode = airlock.NetHost }, []string{"D1", "E5", "F1", "F4"}},
		{"seccomp allows io_uring, modify_ldt, personality", func(p *airlock.Policy) {
			p.Syscalls.Allow = append(p.Syscalls.Allow, "io_uring_setup", "modify_ldt", "personality")
		}, []string{"A11", "E6", "H7"}},
		{"no resource limits", func(p *airlock.Policy) { p.Limits = airlock.Limits{WallTime: time.Minute} },
			[]string{"G1", "G2", "G4", "G5", "G6"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc, err := Run(Options{Binary: probeBinary(t), Sandboxed: true, Only: c.want, Adjust: c.adjust})
			if err != nil {
				t.Fatalf("sandboxed selftest could not run: %v", err)
			}
			for _, r := range sc.Results {
				if r.Verdict != Escaped {
					t.Errorf("%s stayed %s with %s: %s", r.ID, r.Verdict, c.name, firstOf(r.Reason, r.Evidence))
				} else {
					t.Logf("%s escaped with %s: %s", r.ID, c.name, r.Evidence)
				}
			}
		})
	}
}
