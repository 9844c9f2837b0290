package airlock_test

import (
	"strings"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock"
)

// Each limit is hit by a hostile program; the verdict must come from the
// kernel's evidence. Unprivileged here, cgroups are unavailable: the
// rlimit fallback must still stop the program and say it is approximate.
func TestLimits(t *testing.T) {
	base := airlock.DefaultPolicy()
	base.Workdir = "/"
	base.Enforce = airlock.BestEffort // unprivileged: --cpus has no fallback
	type tc struct {
		name   string
		set    func(*airlock.Limits)
		script string
		want   []airlock.Status
		check  func(*testing.T, *airlock.Result)
	}
	cases := []tc{
		{"memory", func(l *airlock.Limits) { l.Memory = 64 << 20 }, "python3 -c 'x = bytearray(400 << 20); x[::4096] = b\"x\" * len(x[::4096])'",
			[]airlock.Status{airlock.MemoryLimit, airlock.NonZeroExit}, nil},
		{"cpu time", func(l *airlock.Limits) { l.CPUTime = 300 * time.Millisecond }, "while :; do :; done",
			[]airlock.Status{airlock.TimeLimit}, func(t *testing.T, r *airlock.Result) {
				if r.CPUTime < 250*time.Millisecond {
					t.Errorf("cpu time %v below the limit that stopped it", r.CPUTime)
				}
			}},
		{"cpu time of children", func(l *airlock.Limits) { l.CPUTime = 1500 * time.Millisecond }, "for i in 1 2 3; do (while :; do :; done) & done; wait",
			[]airlock.Status{airlock.TimeLimit}, nil},
		{"output", func(l *airlock.Limits) { l.Output = 1000 }, "yes",
			[]airlock.Status{airlock.OutputLimit}, func(t *testing.T, r *airlock.Result) {
				if r.OutputBytes != 1000 {
					t.Errorf("output bytes %d, want 1000", r.OutputBytes)
				}
			}},
		{"file size", func(l *airlock.Limits) { l.FileSize = 1 << 20 }, "exec head -c 5000000 /dev/zero > /tmp/f",
			[]airlock.Status{airlock.FileSizeLimit}, nil},
		{"processes", func(l *airlock.Limits) { l.Procs = 16 }, "for i in $(seq 60); do sleep 3 & done; wait",
			[]airlock.Status{airlock.ProcessLimit, airlock.NonZeroExit, airlock.OK}, func(t *testing.T, r *airlock.Result) {
				if r.ProcsPeak > 16 {
					t.Errorf("procs peak %d above the limit 16", r.ProcsPeak)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := base
			p.Limits.WallTime = 20 * time.Second
			c.set(&p.Limits)
			cmd := airlock.Command(p, "/bin/sh", "-c", c.script)
			cmd.Run()
			r := cmd.Result
			ok := false
			if !privileged() && c.name == "cpu time of children" {
				// Without a cgroup each process gets the whole budget:
				// the report must say so.
				if pr, _ := r.Enforced.Lookup("cpu time"); pr.State != airlock.Degraded {
					t.Errorf("cpu time without a cgroup must be reported degraded: %+v", pr)
				}
				return
			}
			for _, w := range c.want {
				ok = ok || r.Status == w
			}
			if !ok {
				t.Fatalf("status %s (exit %d %s), want one of %v\n%s", r.Status, r.ExitCode, r.Signal, c.want, r.Enforced)
			}
			if c.check != nil {
				c.check(t, r)
			}
			if !privileged() && c.name == "memory" {
				if pr, _ := r.Enforced.Lookup("memory"); pr.State != airlock.Degraded {
					t.Errorf("memory without a cgroup must be reported degraded: %+v", pr)
				}
			}
			if privileged() && (c.name == "memory") && r.Status != airlock.MemoryLimit {
				t.Errorf("with a cgroup the verdict must be MemoryLimit, got %s", r.Status)
			}
		})
	}
}

// The strict preset kills a program that forks (status Violation).
func TestStrictPresetViolation(t *testing.T) {
	p := airlock.DefaultPolicy()
	p.Syscalls.Preset = "strict"
	c := airlock.Command(p, "/bin/sh", "-c", "ls / | cat")
	c.Run()
	if c.Result.Status != airlock.Violation {
		t.Fatalf("status %s, want Violation", c.Result.Status)
	}
}

// Denied syscalls are reported with counts.
func TestDenialsReported(t *testing.T) {
	out, res, _ := run(t, airlock.DefaultPolicy(), "unshare -U true; unshare -U true; python3 -c 'import socket; socket.socket(40, 1, 0)'")
	got := map[string]int{}
	for _, d := range res.Denials {
		got[d.Name] = d.Count
	}
	if got["unshare"] != 2 || got["socket"] != 1 {
		t.Fatalf("denials %v, want unshare x2 and socket x1\n%s", res.Denials, out)
	}
	if !strings.Contains(out, "not permitted") {
		t.Errorf("denied calls did not fail with EPERM:\n%s", out)
	}
}

func privileged() bool { return sandboxUID() == 65534 }
