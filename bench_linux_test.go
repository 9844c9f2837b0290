package airlock_test

import (
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock"
)

// bwrapArgs is the comparable bubblewrap sandbox: every namespace, read-only
// system, fresh /proc, /dev and /tmp.
func bwrapArgs() []string {
	a := []string{"--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"}
	for _, d := range []string{"/usr", "/bin", "/lib", "/lib64", "/sbin"} {
		if fi, err := os.Lstat(d); err == nil {
			if fi.Mode()&os.ModeSymlink != 0 {
				t, _ := os.Readlink(d)
				a = append(a, "--symlink", t, d)
			} else {
				a = append(a, "--ro-bind", d, d)
			}
		}
	}
	return append(a, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true")
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func timeIt(f func() error) (time.Duration, error) {
	t := time.Now()
	err := f()
	return time.Since(t), err
}

// BenchmarkStartup runs /bin/true bare, in airlock (library and CLI), in
// bubblewrap and in testdata/floor (a Go program that only clones into the
// namespaces and execs), interleaved, and reports medians and ratios to
// bubblewrap. Targets: library <= 0.5x bwrap, CLI <= 0.9x bwrap.
func BenchmarkStartup(b *testing.B) {
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		b.Skip("bubblewrap is not installed: no baseline to compare with (.ci/run installs it)")
	}
	if cliBin == "" {
		b.Fatal("the CLI did not build")
	}
	// The floor any Go sandbox CLI pays: runtime start, the namespaced
	// clone, exec, wait; none of airlock's sandbox set-up.
	floor := b.TempDir() + "/floor"
	if out, err := exec.Command("go", "build", "-o", floor, "./testdata/floor").CombinedOutput(); err != nil {
		b.Fatalf("building testdata/floor: %v\n%s", err, out)
	}
	p := airlock.DefaultPolicy()
	args := bwrapArgs()
	var bare, lib, cli, bw, fl []time.Duration
	for i := 0; i < b.N; i++ {
		for _, s := range []struct {
			into *[]time.Duration
			f    func() error
		}{
			{&bare, exec.Command("/bin/true").Run},
			{&lib, airlock.Command(p, "/bin/true").Run},
			{&cli, exec.Command(cliBin, "run", "--", "/bin/true").Run},
			{&bw, exec.Command(bwrap, args...).Run},
			{&fl, exec.Command(floor, "/bin/true").Run},
		} {
			d, err := timeIt(s.f)
			if err != nil {
				b.Fatal(err)
			}
			*s.into = append(*s.into, d)
		}
	}
	mb, ml, mc, mw, mf := median(bare), median(lib), median(cli), median(bw), median(fl)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(mb), "bare-ms")
	b.ReportMetric(ms(ml), "library-ms")
	b.ReportMetric(ms(mc), "cli-ms")
	b.ReportMetric(ms(mw), "bwrap-ms")
	b.ReportMetric(float64(ml)/float64(mw), "library/bwrap")
	b.ReportMetric(float64(mc)/float64(mw), "cli/bwrap")
	b.ReportMetric(ms(mf), "go-floor-ms")
	b.ReportMetric(float64(mf)/float64(mw), "go-floor/bwrap")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLimitsCost: a launch with every limit against one without, in the
// same run (target: at most 1.2x). "paced" leaves an untimed 10 ms between
// runs, so each finds its warm sandbox ready (a judge's queue rarely runs
// back to back at this rate); "burst" runs each policy back to back, where
// every run waits for the sandbox made after the previous one.
func BenchmarkLimitsCost(b *testing.B) {
	none := airlock.DefaultPolicy()
	all := none
	all.Limits = airlock.Limits{CPUTime: 10 * time.Second, WallTime: 20 * time.Second, Memory: 256 << 20,
		Procs: 64, Output: 1 << 20, FileSize: 16 << 20, OpenFiles: 256, Stack: 8 << 20, CPUs: 1}
	all.Enforce = airlock.BestEffort
	run := func(p airlock.Policy, into *[]time.Duration) {
		d, err := timeIt(airlock.Command(p, "/bin/true").Run)
		if err != nil {
			b.Fatal(err)
		}
		*into = append(*into, d)
	}
	var a, n, ba, bn []time.Duration
	for i := 0; i < b.N; i++ {
		run(none, &n)
		time.Sleep(10 * time.Millisecond)
		run(all, &a)
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < b.N; i++ {
		run(none, &bn)
	}
	for i := 0; i < b.N; i++ {
		run(all, &ba)
	}
	ms := func(d []time.Duration) float64 { return float64(median(d).Microseconds()) / 1000 }
	b.ReportMetric(ms(n), "paced-nolimits-ms")
	b.ReportMetric(ms(a), "paced-limits-ms")
	b.ReportMetric(float64(median(a))/float64(median(n)), "paced-limits/none")
	b.ReportMetric(ms(bn), "burst-nolimits-ms")
	b.ReportMetric(ms(ba), "burst-limits-ms")
	b.ReportMetric(float64(median(ba))/float64(median(bn)), "burst-limits/none")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkBrokerHeap: a run from a broker holding 256 MB of touched heap
// against the same broker without it, in the same run. Each launch forks the
// broker, so this ratio is what a fork server would bring to 1.
func BenchmarkBrokerHeap(b *testing.B) {
	p := airlock.DefaultPolicy()
	measure := func() time.Duration {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			d, err := timeIt(airlock.Command(p, "/bin/true").Run)
			if err != nil {
				b.Fatal(err)
			}
			ds = append(ds, d)
			time.Sleep(10 * time.Millisecond)
		}
		return median(ds)
	}
	debug.FreeOSMemory() // a previous call's heap must not count as small
	small := measure()
	heap := make([][]byte, 256)
	for i := range heap {
		heap[i] = make([]byte, 1<<20)
		for j := 0; j < len(heap[i]); j += 4096 {
			heap[i][j] = 1
		}
	}
	big := measure()
	runtime.KeepAlive(heap)
	heap = nil
	debug.FreeOSMemory()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(small), "small-heap-ms")
	b.ReportMetric(ms(big), "256MB-heap-ms")
	b.ReportMetric(float64(big)/float64(small), "256MB/small")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSyscallOverhead: 1M getppid inside the sandbox under the default
// filter, the permissive one, and outside any sandbox.
func BenchmarkSyscallOverhead(b *testing.B) {
	const n = "1000000"
	inside := func(preset string) time.Duration {
		p := airlock.DefaultPolicy()
		p.Mounts = append(p.Mounts, airlock.ReadOnly(hostileBin, "/.airlock/hostile"))
		p.Syscalls.Preset = preset
		c := airlock.Command(p, "/.airlock/hostile", n)
		c.Env = []string{"AIRLOCK_HOSTILE=getppid"}
		out, err := c.Output()
		if err != nil {
			b.Fatal(err)
		}
		ns, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return time.Duration(ns)
	}
	var def, perm, bare []time.Duration
	for i := 0; i < b.N; i++ {
		def = append(def, inside("default"))
		perm = append(perm, inside("permissive"))
		c := exec.Command(hostileBin, n)
		c.Env = []string{"AIRLOCK_HOSTILE=getppid"}
		out, err := c.Output()
		if err != nil {
			b.Fatal(err)
		}
		ns, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		bare = append(bare, time.Duration(ns))
	}
	b.ReportMetric(float64(median(def))/float64(median(bare)), "default/bare")
	b.ReportMetric(float64(median(def))/float64(median(perm)), "default/permissive")
	b.ReportMetric(float64(median(bare).Nanoseconds())/1e6, "bare-ns/call")
	b.ReportMetric(0, "ns/op")
}
