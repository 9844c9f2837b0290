package airlock

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/airlock-sandbox/airlock/internal/cgroup"
)

// check's diagnosis on simulated hosts: Landlock missing, cgroups not
// writable. (User namespaces disabled is tested for real in
// TestUserNamespacesDisabledExplained.)
func TestProbeSimulatedHosts(t *testing.T) {
	defer func(l func() (int, error), c func() cgroup.Info, n func(string) error) {
		landlockABI, cgroupDetect, netnsCheck = l, c, n
	}(landlockABI, cgroupDetect, netnsCheck)
	landlockABI = func() (int, error) { return 0, errors.New("landlock is not enabled (simulated)") }
	netnsCheck = func(string) error { return errors.New("netns: nftables rules: no such file (simulated)") }
	cgroupDetect = func() cgroup.Info {
		return cgroup.Info{Version: 2, CanCreate: false, Reason: "not delegated (simulated)", Fix: "systemd-run --user --scope -p Delegate=yes airlock ..."}
	}
	f := Probe()
	ll, _ := f.Lookup("landlock")
	if ll.Available || !ll.Required || !strings.Contains(ll.Fix, "lsm=") || !strings.Contains(ll.Detail, "simulated") {
		t.Errorf("landlock: %+v", ll)
	}
	cg, _ := f.Lookup("cgroups")
	if cg.Available || cg.Required || !strings.Contains(cg.Fix, "Delegate=yes") || !strings.Contains(cg.Lost, "approximate") {
		t.Errorf("cgroups: %+v", cg)
	}
	na, _ := f.Lookup("network allow-list")
	if na.Available || na.Required || na.Fix == "" || !strings.Contains(na.Detail, "simulated") {
		t.Errorf("network allow-list: %+v", na)
	}
	if f.DefaultEnforceable() {
		t.Error("default policy reported enforceable without Landlock")
	}

	// A run without Landlock still runs, says so, and refuses only when
	// the policy requires Landlock.
	p := DefaultPolicy()
	p.Workdir = "/"
	c := Command(p, "/bin/true")
	if err := c.Run(); err != nil {
		t.Fatalf("run without Landlock: %v", err)
	}
	if pr, _ := c.Result.Enforced.Lookup("landlock"); pr.State != Off {
		t.Errorf("landlock reported %+v, want off", pr)
	}
	p.Require = []string{"landlock"}
	err := Command(p, "/bin/true").Run()
	var se *SetupError
	if !errors.As(err, &se) || !errors.Is(err, ErrNotEnforceable) || se.Stage != "landlock" {
		t.Errorf("required Landlock missing: %v", err)
	}
}

// On this host nftables works in user namespaces, as root and not: check
// says so after a real try (the test binary calls RunHelper).
func TestProbeNetworkAllowList(t *testing.T) {
	na, ok := Probe().Lookup("network allow-list")
	if !ok || !na.Available || na.Required {
		t.Errorf("network allow-list: %+v", na)
	}
}

// On this host as the unprivileged test user, cgroups are really not
// writable: check must say so and how to fix it.
func TestProbeCgroupsForUser(t *testing.T) {
	f := Probe()
	cg, _ := f.Lookup("cgroups")
	if os.Geteuid() == 0 {
		if !cg.Available {
			t.Errorf("root on a v1 host: cgroups should be creatable: %+v", cg)
		}
		return
	}
	if cg.Available || cg.Fix == "" || cg.Detail == "" {
		t.Errorf("unprivileged: want cgroups missing with a reason and fix, got %+v", cg)
	}
}
