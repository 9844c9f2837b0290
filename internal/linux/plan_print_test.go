package linux

import (
	"strings"
	"testing"

	"github.com/airlock-sandbox/airlock/internal/seccomp"
)

// The launch order of DESIGN.md: each step after the ones it relies on,
// seccomp last before exec.
func TestPlanOrder(t *testing.T) {
	f, err := seccomp.Preset("default")
	if err != nil {
		t.Fatal(err)
	}
	insns, err := f.Compile("amd64")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Plan(&Spec{Path: "true", Args: []string{"true"}, Dir: "/", Hostname: "h", Seccomp: insns,
		Mounts: []Mount{{Kind: Bind, Source: "/usr", Dest: "/usr"}, {Kind: Tmpfs, Dest: "/tmp", Writable: true}}})
	if err != nil {
		t.Fatal(err)
	}
	order := []string{"parent-death signal", "sync with broker", "close fds", "setsid", "mount propagation private",
		"mount /usr", "setresuid", "mount root tmpfs", "mount /dev", "mount /proc", "read-only root", "pivot_root",
		"detach old root", "hostname", "chdir /", "drop capabilities", "no_new_privs", "fork target",
		"close inherited fds", "seccomp", "exec true", "init"}
	at := 0
	for _, step := range order {
		i := strings.Index(s[at:], "  "+step)
		if i < 0 {
			t.Fatalf("step %q missing or out of order in the plan:\n%s", step, s)
		}
		at += i + len(step)
	}
}
