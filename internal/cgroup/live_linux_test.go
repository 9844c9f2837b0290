package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the workload: AIRLOCK_CGROUP_HELPER picks one.
// Each helper first waits for a line on stdin, so the broker can move it
// into the group before it does anything.
func TestMain(m *testing.M) {
	mode := os.Getenv("AIRLOCK_CGROUP_HELPER")
	if mode == "" {
		os.Exit(m.Run())
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	switch mode {
	case "alloc": // touch AIRLOCK_MB megabytes
		mb, _ := strconv.Atoi(os.Getenv("AIRLOCK_MB"))
		buf := make([]byte, mb<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		fmt.Println("allocated", len(buf))
	case "spin": // 300 ms of wall time busy on the CPU
		n := 0
		for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); n++ {
		}
		fmt.Println("spun", n)
	case "broker": // a broker that dies without cleaning up
		g, err := New(Spec{Pids: 10})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		sleeper := exec.Command("sleep", "600")
		sleeper.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := sleeper.Start(); err != nil || g.Add(sleeper.Process.Pid) != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(sleeper.Process.Pid, strings.Join(g.Dirs(), " "))
		bufio.NewReader(os.Stdin).ReadString('\n') // wait to be SIGKILLed
	case "forkloop": // start up to 200 sleepers; report how many and the errno that stopped it
		n, errno := 0, 0
		for ; n < 200; n++ {
			_, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "600"}, &syscall.ProcAttr{})
			if err != nil {
				errno = int(err.(syscall.Errno))
				break
			}
		}
		fmt.Printf("started %d %d\n", n, errno)
		bufio.NewReader(os.Stdin).ReadString('\n') // stay in the group until the test is done
	}
	os.Exit(0)
}

func requireCgroups(t *testing.T) Info {
	t.Helper()
	info := Detect()
	if !info.CanCreate {
		t.Skipf("needs cgroup delegation, unavailable here: %s", info.Reason)
	}
	return info
}

func newGroup(t *testing.T, s Spec) *Group {
	t.Helper()
	g, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return g
}

// start runs cmd, moves it into g and then releases it.
func start(t *testing.T, g *Group, cmd *exec.Cmd) io.WriteCloser {
	t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill the whole group first: grandchildren may hold cmd's pipes open.
	t.Cleanup(func() { g.Kill(); cmd.Process.Kill(); cmd.Wait() })
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(in, "go\n"); err != nil {
		t.Fatal(err)
	}
	return in
}

func helper(t *testing.T, mode string, env ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append(env, "AIRLOCK_CGROUP_HELPER="+mode)...)
	return cmd
}

// gone is true once pid no longer exists or is a zombie nobody reaped yet.
func gone(pid int) bool {
	if unix.Kill(pid, 0) == unix.ESRCH {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func waitGone(pid int) bool {
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if gone(pid) {
			return true
		}
	}
	return false
}

// TestDetectAndNewAgree: whatever Detect says about delegation, New does.
// Run unprivileged on a v1 host, New must fail with the errno and the reason.
func TestDetectAndNewAgree(t *testing.T) {
	info := Detect()
	t.Logf("Detect: %+v", info)
	if info.Version == 0 {
		t.Skipf("no cgroups mounted: %s", info.Reason)
	}
	if info.Version == 1 && os.Geteuid() == 0 && !info.CanCreate {
		t.Errorf("root on a cgroup v1 host cannot create cgroups: %s", info.Reason)
	}
	own, _ := os.ReadFile("/proc/self/cgroup")
	pc, err := parseProcCgroup(string(own))
	if err != nil {
		t.Fatal(err)
	}
	wantSuffix := pc.unified
	if info.Version == 1 {
		wantSuffix = pc.v1["memory"]
	}
	if !strings.HasSuffix(info.Paths["memory"], strings.TrimSuffix(wantSuffix, "/")) {
		t.Errorf("Paths[memory] = %q, not our cgroup %q", info.Paths["memory"], wantSuffix)
	}
	g, err := New(Spec{Memory: 64 << 20, Pids: 32})
	if info.CanCreate {
		if err != nil {
			t.Fatalf("Detect says CanCreate but New failed: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil {
		g.Close()
		t.Fatalf("Detect says no delegation (%s) but New succeeded", info.Reason)
	}
	if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EROFS) {
		t.Errorf("New error does not wrap the errno: %v", err)
	}
	if info.Reason == "" || info.Fix == "" || !strings.Contains(err.Error(), info.Reason) {
		t.Errorf("no reason/fix: Reason %q Fix %q err %v", info.Reason, info.Fix, err)
	}
	t.Logf("New: %v", err)
}

// G2: 200 MB touched under a 64 MB limit is OOM-killed, and the kernel says so.
func TestMemoryLimitOOM(t *testing.T) {
	requireCgroups(t)
	const limit = 64 << 20
	g := newGroup(t, Spec{Memory: limit})
	cmd := helper(t, "alloc", "AIRLOCK_MB=200")
	out := &strings.Builder{}
	cmd.Stdout = out
	start(t, g, cmd)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("allocating 200 MB under 64 MB: err %v, output %q; want SIGKILL", err, out)
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats %+v", s)
	if !s.OOMKilled {
		t.Error("OOMKilled false after an OOM kill")
	}
	// The kernel's counters may pass the limit by a charge batch (seen: one
	// page) before it reclaims or kills.
	if s.MemoryPeak < limit*3/4 || s.MemoryPeak > limit+1<<20 {
		t.Errorf("MemoryPeak %d, want near the limit %d", s.MemoryPeak, limit)
	}
}

// A small allocation under the same limit is not an OOM.
func TestMemoryUnderLimit(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Spec{Memory: 128 << 20})
	cmd := helper(t, "alloc", "AIRLOCK_MB=40")
	start(t, g, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("40 MB touched: MemoryPeak %d (%.3f of 40 MiB)", s.MemoryPeak, float64(s.MemoryPeak)/(40<<20))
	if s.OOMKilled || s.MemoryPeak < 40<<20 {
		t.Errorf("stats %+v after touching 40 MB under 128 MB", s)
	}
}

// G1: a fork loop stops at pids.max while the host can still fork.
func TestPidsLimit(t *testing.T) {
	requireCgroups(t)
	const max = 16
	g := newGroup(t, Spec{Pids: max})
	cmd := helper(t, "forkloop")
	out, _ := cmd.StdoutPipe()
	start(t, g, cmd)
	line, _ := bufio.NewReader(out).ReadString('\n')
	var n int
	var errno int
	fmt.Sscanf(line, "started %d %d", &n, &errno)
	t.Logf("fork loop: %q (%v)", line, syscall.Errno(errno))
	if syscall.Errno(errno) != syscall.EAGAIN || n >= max || n == 0 {
		t.Fatalf("fork loop: %q, want fewer than %d forks then EAGAIN", line, max)
	}
	if err := exec.Command("true").Run(); err != nil {
		t.Fatalf("host fork failed while the group is at pids.max: %v", err)
	}
	pids, err := g.procs()
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d processes in the group, stats %+v", len(pids), s)
	if len(pids) > max || len(pids) < max/2 {
		t.Errorf("%d processes in the group, want about pids.max=%d", len(pids), max)
	}
	if !s.PidsMaxHit {
		t.Error("PidsMaxHit false after 200 forks under pids.max=16")
	}
	if _, err := os.Stat(filepath.Join(g.dirs["pids"], "pids.peak")); err == nil && (s.PidsPeak > max || s.PidsPeak < len(pids)) {
		t.Errorf("PidsPeak %d, want between %d and %d", s.PidsPeak, len(pids), max)
	}
}

// C5: a double-forked, setsid'd daemon does not survive Kill.
func TestKillDaemon(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Spec{})
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	cmd := exec.Command("sh", "-c", `read x; sh -c 'setsid sh -c "echo \$\$ > \"\$1\"; exec sleep 600" _ "$1" </dev/null >/dev/null 2>&1 &' _ "$1"; exec sleep 600`, "_", pidFile)
	start(t, g, cmd)
	var daemon int
	for end := time.Now().Add(5 * time.Second); daemon == 0 && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		daemon, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if daemon == 0 || gone(daemon) {
		t.Fatal("daemon did not start")
	}
	// It must really have escaped: its own session, not our child.
	if sid, _ := unix.Getsid(daemon); sid != daemon {
		t.Fatalf("daemon session %d, want its own %d", sid, daemon)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, p := range []int{cmd.Process.Pid, daemon} {
		if !waitGone(p) {
			t.Errorf("pid %d survived Kill", p)
		}
	}
	if pids, _ := g.procs(); len(pids) != 0 {
		t.Errorf("group not empty after Kill: %v", pids)
	}
}

// Kill wins against a tree that forks as fast as it can.
func TestKillForkingTree(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Spec{Pids: 256})
	cmd := exec.Command("sh", "-c", `read x; while :; do (sleep 600 &); sh -c 'sleep 600 &' & done`)
	start(t, g, cmd)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if pids, _ := g.procs(); len(pids) > 50 {
			break
		}
	}
	before, _ := g.procs()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	after, err := g.procs()
	t.Logf("%d processes before Kill, %d after", len(before), len(after))
	if err != nil || len(after) != 0 {
		t.Fatalf("after Kill: %v %v", after, err)
	}
	for _, p := range before {
		if !waitGone(p) {
			t.Errorf("pid %d survived Kill", p)
		}
	}
}

func TestCloseRemovesDirs(t *testing.T) {
	requireCgroups(t)
	g, err := New(Spec{Memory: 64 << 20, Pids: 64, CPUs: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "read x; sleep 600 & exec sleep 600")
	start(t, g, cmd)
	dirs := g.Dirs()
	if len(dirs) == 0 {
		t.Fatal("no dirs")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left after Close: %v", d, err)
		}
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The limits really land in the kernel files.
func TestLimitsWritten(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Spec{Memory: 96 << 20, Pids: 40, CPUs: 1.5})
	want := map[string]string{}
	if g.Version() == 1 {
		want[g.dirs["memory"]+"/memory.limit_in_bytes"] = strconv.Itoa(96 << 20)
		if Detect().Controllers["memsw"] {
			want[g.dirs["memory"]+"/memory.memsw.limit_in_bytes"] = strconv.Itoa(96 << 20)
		}
		want[g.dirs["pids"]+"/pids.max"] = "40"
		want[g.dirs["cpu"]+"/cpu.cfs_quota_us"] = "150000"
		want[g.dirs["cpu"]+"/cpu.cfs_period_us"] = "100000"
		if fd, err := g.FD(); err == nil {
			unix.Close(fd)
			t.Error("FD succeeded on cgroup v1")
		}
	} else {
		want[g.dirs["memory"]+"/memory.max"] = strconv.Itoa(96 << 20)
		want[g.dirs["pids"]+"/pids.max"] = "40"
		want[g.dirs["cpu"]+"/cpu.max"] = "150000 100000"
	}
	for p, v := range want {
		if got := readString(p); got != v {
			t.Errorf("%s = %q, want %q", p, got, v)
		}
	}
}

// CPU time of the group covers a 300 ms busy loop.
func TestCPUAccounting(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, Spec{})
	cmd := helper(t, "spin")
	start(t, g, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CPU time %v for a 300 ms busy loop", s.CPUTime)
	if s.CPUTime < 100*time.Millisecond {
		t.Errorf("CPU time %v, want > 100ms", s.CPUTime)
	}
}

// CleanStale removes the group of a dead broker, killing what is inside,
// and leaves a live broker's group alone.
func TestCleanStale(t *testing.T) {
	requireCgroups(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	_, l := detectHost()
	stale, err := create(l, Spec{Pids: 10}, groupName(dead.Process.Pid, "stale"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stale.Close() })
	cmd := exec.Command("sh", "-c", "read x; exec sleep 600")
	start(t, stale, cmd)
	live := newGroup(t, Spec{})

	removed, err := CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("removed %v", removed)
	for _, d := range stale.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("stale %s still there: %v", d, err)
		}
		found := false
		for _, r := range removed {
			found = found || r == d
		}
		if !found {
			t.Errorf("%s not reported as removed", d)
		}
	}
	if !waitGone(cmd.Process.Pid) {
		t.Error("process in the stale group survived")
	}
	for _, d := range live.Dirs() {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("live group dir %s removed: %v", d, err)
		}
	}
}

// A8: a target inside the group, running as an unprivileged uid, tries to
// move itself out, lift its limits, and plant a release_agent. Everything is
// checked from outside.
func TestTargetCannotEscape(t *testing.T) {
	info := requireCgroups(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to start the target as another uid")
	}
	g := newGroup(t, Spec{Memory: 64 << 20, Pids: 32})
	_, l := detectHost()
	releaseAgent := filepath.Join(l.mounts["memory"].point, "release_agent") // only the hierarchy root has one
	files := []string{
		filepath.Join(g.dirs["memory"], "memory.limit_in_bytes"),
		filepath.Join(g.dirs["pids"], "pids.max"),
		filepath.Join(g.dirs["memory"], "notify_on_release"),
		releaseAgent,
	}
	if g.Version() == 2 {
		files = []string{filepath.Join(g.dirs["memory"], "memory.max"), filepath.Join(g.dirs["pids"], "pids.max")}
	}
	before := map[string]string{}
	for _, f := range files {
		before[f] = readString(f)
	}
	var script strings.Builder
	script.WriteString("read x\n")
	for c, d := range info.Paths { // back to the broker's cgroup, and to the root
		fmt.Fprintf(&script, "echo $$ > %s/cgroup.procs\n", d)
		fmt.Fprintf(&script, "echo $$ > %s/cgroup.procs\n", filepath.Dir(d))
		fmt.Fprintf(&script, "mkdir %s/escape-%s\n", g.dirs[c], c)
	}
	for _, f := range files {
		fmt.Fprintf(&script, "echo 1 > %s; echo -1 > %s; echo max > %s\n", f, f, f)
	}
	fmt.Fprintf(&script, "echo /tmp/airlock-pwn > %s\n", releaseAgent)
	script.WriteString("echo done\nexec sleep 600\n")
	cmd := exec.Command("sh", "-c", script.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1001, Gid: 1001}}
	out, _ := cmd.StdoutPipe()
	start(t, g, cmd)
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "done\n" {
		t.Fatalf("attack script did not finish: %q", line)
	}
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := parseProcCgroup(string(own))
	if err != nil {
		t.Fatal(err)
	}
	for c, d := range g.dirs {
		p := pc.v1[c]
		if g.Version() == 2 {
			p = pc.unified
		}
		if !strings.HasSuffix(d, p) || filepath.Base(p) != filepath.Base(d) {
			t.Errorf("target's %s cgroup is %q, want the group %s", c, p, d)
		}
	}
	for _, f := range files {
		if got := readString(f); got != before[f] {
			t.Errorf("%s changed from %q to %q", f, before[f], got)
		}
	}
	for c, d := range g.dirs {
		if _, err := os.Stat(filepath.Join(d, "escape-"+c)); err == nil {
			t.Errorf("target created a cgroup below %s", d)
		}
	}
}

// C5: the broker is SIGKILLed with a setsid'd sleeper in its group; the
// next broker's CleanStale kills the sleeper and removes the group.
func TestCleanStaleAfterBrokerKill(t *testing.T) {
	requireCgroups(t)
	broker := helper(t, "broker")
	in, _ := broker.StdinPipe()
	out, _ := broker.StdoutPipe()
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	defer broker.Wait()
	defer broker.Process.Kill()
	io.WriteString(in, "go\n")
	line, _ := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	sleeper, _ := strconv.Atoi(f[0])
	if len(f) < 2 || sleeper == 0 {
		t.Fatalf("broker: %q", line)
	}
	dirs := f[1:]
	broker.Process.Signal(syscall.SIGKILL)
	broker.Wait()
	if gone(sleeper) {
		t.Fatal("sleeper died with the broker; nothing to clean")
	}
	removed, err := CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	if !waitGone(sleeper) {
		t.Errorf("sleeper %d survived CleanStale", sleeper)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
		if !slices.Contains(removed, d) {
			t.Errorf("%s not in removed %v", d, removed)
		}
	}
}

// BenchmarkNewClose is the cgroup cost of one sandbox run: create with all
// limits, read stats, kill and remove.
func BenchmarkNewClose(b *testing.B) {
	if !Detect().CanCreate {
		b.Skip("needs cgroup delegation")
	}
	for b.Loop() {
		g, err := New(Spec{Memory: 256 << 20, Pids: 64, CPUs: 1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.Stats(); err != nil {
			b.Fatal(err)
		}
		if err := g.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// Processes in a cgroup made below the group (as a delegated sandbox could)
// are found, killed, and the nested directories removed with the group.
func TestNestedGroupsKilledAndRemoved(t *testing.T) {
	requireCgroups(t)
	g, err := New(Spec{Pids: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	nested := filepath.Join(g.Dirs()[0], "inner", "deeper")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if err := writeFile(filepath.Join(nested, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	if pids, _ := g.procs(); !slices.Contains(pids, cmd.Process.Pid) {
		t.Fatalf("the process in a nested group is not listed: %v", pids)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if !waitGone(cmd.Process.Pid) {
		t.Error("the process in the nested group survived Close")
	}
	if _, err := os.Stat(g.Dirs()[0]); !os.IsNotExist(err) {
		t.Errorf("%s left after Close: %v", g.Dirs()[0], err)
	}
}
