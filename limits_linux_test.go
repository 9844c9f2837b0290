package airlock_test

import (
	"os"
	"os/exec"
	"runtime"
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
		{"cpu time, SIGXCPU ignored", func(l *airlock.Limits) { l.CPUTime = time.Second }, "trap '' XCPU; while :; do :; done",
			[]airlock.Status{airlock.TimeLimit}, func(t *testing.T, r *airlock.Result) {
				if r.CPUTime > 1500*time.Millisecond {
					t.Errorf("ran %v of CPU under a 1s limit by ignoring SIGXCPU", r.CPUTime)
				}
			}},
		// A SIGKILL far under the CPU limit is the program's own doing.
		{"cpu time, own SIGKILL under the limit", func(l *airlock.Limits) { l.CPUTime = 2 * time.Second }, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; kill -9 $$",
			[]airlock.Status{airlock.Signaled}, func(t *testing.T, r *airlock.Result) {
				if r.Signal != "SIGKILL" {
					t.Errorf("signal %q, want SIGKILL", r.Signal)
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
		{"output on both streams", func(l *airlock.Limits) { l.Output = 1000 }, "head -c 600 /dev/zero; head -c 600 /dev/zero >&2; sleep 5",
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
				t.Fatalf("status %s (exit %d %s, cpu %v, wall %v), want one of %v\n%s", r.Status, r.ExitCode, r.Signal, r.CPUTime, r.WallTime, c.want, r.Enforced)
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
		t.Fatalf("status %s (%s), want Violation", c.Result.Status, c.Result.Error)
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

// The exact figures judges rely on.
func TestLimitFigures(t *testing.T) {
	base := airlock.DefaultPolicy()
	base.Workdir = "/"
	base.Enforce = airlock.BestEffort

	t.Run("cpu time 1s within 10%", func(t *testing.T) {
		p := base
		p.Limits.CPUTime = time.Second
		_, r, _ := run(t, p, "while :; do :; done")
		if r.Status != airlock.TimeLimit || r.CPUTime < 900*time.Millisecond || r.CPUTime > 1100*time.Millisecond {
			t.Fatalf("status %s, cpu %v; want TimeLimit at 1s +-10%%", r.Status, r.CPUTime)
		}
	})
	t.Run("wall time", func(t *testing.T) {
		p := base
		p.Limits.WallTime = time.Second
		_, r, _ := run(t, p, "sleep 60")
		if r.Status != airlock.WallTimeLimit || r.WallTime > 1500*time.Millisecond {
			t.Fatalf("status %s after %v; want WallTimeLimit within 1.5s", r.Status, r.WallTime)
		}
	})
	t.Run("memory 4G under 256M", func(t *testing.T) {
		p := base
		p.Limits.Memory = 256 << 20
		_, r, _ := run(t, p, "python3 -c 'x = bytearray(4 << 30)'")
		want := airlock.MemoryLimit
		if !privileged() {
			want = airlock.NonZeroExit // RLIMIT_AS: the allocation fails inside
		}
		if r.Status != want {
			t.Fatalf("status %s, want %s", r.Status, want)
		}
		if privileged() && r.MemoryPeak > 300<<20 {
			t.Errorf("peak %d above the limit", r.MemoryPeak)
		}
	})
	t.Run("memory peak of 100MB within 10%", func(t *testing.T) {
		_, r, err := run(t, base, "dd if=/dev/zero of=/dev/null bs=100M count=2 2>/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		const want = 100 << 20
		if r.MemoryPeak < want*9/10 || r.MemoryPeak > want*11/10 {
			t.Fatalf("memory peak %d MiB, want 100 MiB +-10%%", r.MemoryPeak>>20)
		}
	})
	t.Run("output flood", func(t *testing.T) {
		p := base
		p.Limits.Output = 1 << 20
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := airlock.Command(p, "/bin/sh", "-c", "head -c 100000000 /dev/zero")
		var sink countingWriter
		c.Stdout = &sink
		c.Run()
		runtime.ReadMemStats(&after)
		if c.Result.Status != airlock.OutputLimit || sink.n != 1<<20 {
			t.Fatalf("status %s, %d bytes passed; want OutputLimit at 1 MiB", c.Result.Status, sink.n)
		}
		if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 16<<20 {
			t.Errorf("broker heap grew by %d MiB during the flood", grew>>20)
		}
	})
	t.Run("filling /tmp", func(t *testing.T) {
		p := base
		p.Limits.TmpfsSize = 8 << 20
		out, _, _ := run(t, p, "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; df -k /tmp | tail -1")
		if !strings.Contains(out, "No space left") {
			t.Fatalf("no ENOSPC inside:\n%s", out)
		}
		if _, err := os.Stat("/tmp/fill"); err == nil {
			t.Errorf("the file reached the host's /tmp")
		}
	})
	t.Run("fork bomb", func(t *testing.T) {
		p := base
		p.Limits.Procs = 64
		p.Limits.WallTime = 4 * time.Second
		c := airlock.Command(p, "/bin/sh", "-c", "b() { b | b & }; b; sleep 3")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		// The host keeps working during the bomb.
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Errorf("host fork failed during the bomb: %v", err)
		}
		c.Wait()
		if privileged() && c.Result.ProcsPeak > 64 {
			t.Errorf("procs peak %d above 64", c.Result.ProcsPeak)
		}
	})
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func TestLimitValidation(t *testing.T) {
	if cliBin == "" {
		t.Fatal("the CLI did not build")
	}
	for _, args := range [][]string{{"--memory", "0"}, {"--memory", "1x"}, {"--cpu-time", "-1s"}, {"--procs", "0"}, {"--cpus", "-2"}, {"--timeout", "soon"}} {
		out, err := exec.Command(cliBin, append(append([]string{"run"}, args...), "--", "true")...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), args[1]) {
			t.Errorf("%v: want a one-line error naming %q, got %v %q", args, args[1], err, out)
		}
	}
}
