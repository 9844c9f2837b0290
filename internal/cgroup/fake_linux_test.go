package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeV2 builds a cgroup2 tree in a temp dir with the broker in
// /user.slice/app, and returns the mountinfo and /proc/self/cgroup text.
func fakeV2(t *testing.T, controllers string) (root, mountinfo, procCgroup string) {
	t.Helper()
	root = t.TempDir()
	own := filepath.Join(root, "user.slice", "app")
	if err := os.MkdirAll(own, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFake(t, own, map[string]string{
		"cgroup.controllers":     controllers,
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
		"cgroup.kill":            "",
	})
	mountinfo = fmt.Sprintf("23 1 8:1 / / rw - ext4 /dev/sda1 rw\n41 23 0:38 / %s rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n",
		strings.ReplaceAll(root, " ", `\040`))
	return root, mountinfo, "0::/user.slice/app\n"
}

func writeFake(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFake(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDetectFake(t *testing.T) {
	v2root, v2mi, v2pc := fakeV2(t, "cpuset cpu io memory pids")
	_, v2miNoPids, _ := fakeV2(t, "cpu memory")
	_, v2miNoMem, _ := fakeV2(t, "cpu pids")
	v1root := t.TempDir()
	for _, d := range []string{"memory/job", "pids", "cpu,cpuacct", "freezer"} {
		if err := os.MkdirAll(filepath.Join(v1root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(v1root, "memory/job/memory.memsw.limit_in_bytes"), []byte("max"), 0o644)
	v1mi := fmt.Sprintf(`35 31 0:32 / %[1]s/memory rw - cgroup cgroup rw,memory
39 31 0:36 / %[1]s/pids rw - cgroup cgroup rw,pids
32 31 0:29 / %[1]s/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
37 31 0:34 / %[1]s/freezer rw - cgroup cgroup rw,freezer
41 31 0:38 / %[1]s/unified rw - cgroup2 cgroup2 rw
`, v1root)
	v1pc := "4:memory:/job\n8:pids:/\n2:cpu,cpuacct:/\n6:freezer:/\n0::/\n"

	tests := []struct {
		name        string
		mi, pc      string
		version     int
		canCreate   bool
		paths       map[string]string
		controllers []string
		reason      string
	}{
		{name: "v2 delegated", mi: v2mi, pc: v2pc, version: 2, canCreate: true,
			paths:       map[string]string{"memory": v2root + "/user.slice/app", "pids": v2root + "/user.slice/app"},
			controllers: []string{"memory", "pids", "cpu", "kill"}},
		{name: "v2 leaf is skipped", mi: v2mi, pc: "0::/user.slice/app/airlock-broker\n", version: 2, canCreate: true,
			paths: map[string]string{"memory": v2root + "/user.slice/app"}},
		{name: "v2 without pids", mi: v2miNoPids, pc: v2pc, version: 2, reason: "pids is not delegated"},
		{name: "v2 without memory", mi: v2miNoMem, pc: v2pc, version: 0, reason: "no cgroup v1 memory"},
		{name: "v1 hybrid", mi: v1mi, pc: v1pc, version: 1, canCreate: true,
			paths: map[string]string{"memory": v1root + "/memory/job", "pids": v1root + "/pids",
				"cpu": v1root + "/cpu,cpuacct", "cpuacct": v1root + "/cpu,cpuacct", "freezer": v1root + "/freezer"},
			controllers: []string{"memory", "memsw", "pids", "cpu", "cpuacct", "freezer"}},
		{name: "nothing mounted", mi: "23 1 8:1 / / rw - ext4 /dev/sda1 rw\n", pc: v1pc, version: 0, reason: "no cgroup"},
		{name: "bad proc cgroup", mi: v1mi, pc: "junk\n", version: 0, reason: "bad /proc/self/cgroup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, l := detect(tt.pc, tt.mi)
			if info.Version != tt.version || l.version != tt.version {
				t.Fatalf("version = %d/%d, want %d (%+v)", info.Version, l.version, tt.version, info)
			}
			if info.CanCreate != tt.canCreate {
				t.Errorf("CanCreate = %v, want %v (reason %q)", info.CanCreate, tt.canCreate, info.Reason)
			}
			if !info.CanCreate && (!strings.Contains(info.Reason, tt.reason) || info.Fix == "") {
				t.Errorf("reason %q / fix %q, want reason containing %q and a fix", info.Reason, info.Fix, tt.reason)
			}
			for c, p := range tt.paths {
				if info.Paths[c] != p {
					t.Errorf("Paths[%s] = %q, want %q", c, info.Paths[c], p)
				}
			}
			for _, c := range tt.controllers {
				if !info.Controllers[c] {
					t.Errorf("controller %s missing in %v", c, info.Controllers)
				}
			}
		})
	}
}

// TestV2Fake drives a v2 group against regular files: what the driver
// writes, and how it reads the kernel's counters.
func TestV2Fake(t *testing.T) {
	root, mi, pc := fakeV2(t, "cpuset cpu io memory pids")
	info, l := detect(pc, mi)
	if !info.CanCreate {
		t.Fatalf("fake v2 not usable: %+v", info)
	}
	old := mkdir
	t.Cleanup(func() { mkdir = old })
	mkdir = func(dir string) error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		writeFake(t, dir, map[string]string{
			"memory.max": "max", "memory.swap.max": "max", "memory.oom.group": "0",
			"pids.max": "max", "cpu.max": "max 100000", "cgroup.procs": "", "cgroup.kill": "0",
		})
		return nil
	}
	g, err := create(l, Spec{Memory: 64 << 20, Pids: 32, CPUs: 1.5}, "airlock-1-test")
	if err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(root, "user.slice", "app")
	dir := filepath.Join(own, "airlock-1-test")
	if g.Version() != 2 || len(g.Dirs()) != 1 || g.Dirs()[0] != dir {
		t.Fatalf("version %d dirs %v, want 2 [%s]", g.Version(), g.Dirs(), dir)
	}
	want := map[string]string{
		own + "/cgroup.subtree_control": "+memory +pids +cpu",
		dir + "/memory.max":             "67108864",
		dir + "/memory.swap.max":        "0",
		dir + "/memory.oom.group":       "1",
		dir + "/pids.max":               "32",
		dir + "/cpu.max":                "150000 100000",
	}
	for p, v := range want {
		if got := readFake(t, p); got != v {
			t.Errorf("%s = %q, want %q", p, got, v)
		}
	}
	// A child joins by writing 0 to the one directory's cgroup.procs.
	fds, err := g.JoinFiles()
	if err != nil || len(fds) != 1 {
		t.Fatalf("JoinFiles: %v %v, want one file", fds, err)
	}
	if p, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fds[0])); p != dir+"/cgroup.procs" {
		t.Errorf("v2 join file is %s, want %s/cgroup.procs", p, dir)
	}
	syscall.Close(fds[0])
	if err := g.Add(4242); err != nil {
		t.Fatal(err)
	}
	if got := readFake(t, dir+"/cgroup.procs"); got != "4242" {
		t.Errorf("cgroup.procs = %q after Add", got)
	}
	fd, err := g.FD()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("FD is not a directory: %v mode %o", err, st.Mode)
	}
	unix.Close(fd)

	writeFake(t, dir, map[string]string{
		"memory.peak": "5000", "memory.events": "low 0\nmax 3\noom 1\noom_kill 1\n",
		"cpu.stat": "usage_usec 250000\nuser_usec 200000\n", "pids.peak": "7", "pids.events": "max 2\n",
	})
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s != (Stats{CPUTime: 250 * time.Millisecond, MemoryPeak: 5000, OOMKilled: true, PidsPeak: 7, PidsMaxHit: true}) {
		t.Errorf("Stats = %+v", s)
	}
	os.Remove(dir + "/memory.peak")
	writeFake(t, dir, map[string]string{"memory.current": "4096", "memory.events": "oom_kill 0\n", "pids.events": "max 0\n"})
	if s, err = g.Stats(); err != nil || s.MemoryPeak != 4096 || s.OOMKilled || s.PidsMaxHit {
		t.Errorf("Stats without memory.peak = %+v, %v", s, err)
	}

	// Emptied as the kernel would after cgroup.kill; a pid left in the
	// regular file would otherwise be signalled for real.
	writeFake(t, dir, map[string]string{"cgroup.procs": ""})
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := readFake(t, dir+"/cgroup.kill"); got != "1" {
		t.Errorf("cgroup.kill = %q after Kill", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries { // the kernel removes interface files with the dir
		os.Remove(filepath.Join(dir, e.Name()))
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close: %v", dir, err)
	}
}

func TestV2FakeMissingController(t *testing.T) {
	_, mi, pc := fakeV2(t, "memory pids")
	_, l := detect(pc, mi)
	if _, err := create(l, Spec{CPUs: 1}, "airlock-1-x"); err == nil || !strings.Contains(err.Error(), "cpu") {
		t.Fatalf("create with CPUs and no cpu controller: err = %v, want an error naming cpu", err)
	}
	if _, err := create(l, Spec{Memory: -1}, "airlock-1-x"); err == nil {
		t.Fatal("negative memory accepted")
	}
}

// On v2 the kernel refuses to enable controllers for children while the
// broker's cgroup has processes; New moves them into a leaf first.
func TestV2FakeLeaf(t *testing.T) {
	root, mi, pc := fakeV2(t, "cpu memory pids")
	own := filepath.Join(root, "user.slice", "app")
	writeFake(t, own, map[string]string{"cgroup.procs": "4242\n4343\n"})
	_, l := detect(pc, mi)
	oldMkdir, oldWrite := mkdir, writeFile
	t.Cleanup(func() { mkdir, writeFile = oldMkdir, oldWrite })
	mkdir = func(dir string) error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		writeFake(t, dir, map[string]string{"cgroup.procs": "", "memory.max": "max", "pids.max": "max"})
		return nil
	}
	writeFile = func(path, value string) error {
		switch filepath.Base(path) {
		case "cgroup.subtree_control": // no internal processes
			if strings.TrimSpace(readFake(t, filepath.Join(filepath.Dir(path), "cgroup.procs"))) != "" {
				return &os.PathError{Op: "write", Path: path, Err: unix.EBUSY}
			}
		case "cgroup.procs": // a move: out of own, into path
			var keep []string
			for _, p := range strings.Fields(readFake(t, filepath.Join(own, "cgroup.procs"))) {
				if p != value {
					keep = append(keep, p)
				}
			}
			writeFake(t, own, map[string]string{"cgroup.procs": strings.Join(keep, "\n")})
			cur := readFake(t, path)
			return os.WriteFile(path, []byte(cur+value+"\n"), 0o644)
		}
		return writeCgroupFile(path, value)
	}
	if _, err := create(l, Spec{Memory: 1 << 30, Pids: 10}, "airlock-1-leaf"); err != nil {
		t.Fatal(err)
	}
	if got := readFake(t, filepath.Join(own, leafName, "cgroup.procs")); got != "4242\n4343\n" {
		t.Errorf("leaf cgroup.procs = %q, want both broker-cgroup pids", got)
	}
	if got := readFake(t, filepath.Join(own, "cgroup.subtree_control")); got != "+memory +pids +cpu" {
		t.Errorf("subtree_control = %q", got)
	}
	if got := readFake(t, filepath.Join(own, "airlock-1-leaf", "memory.max")); got != "1073741824" {
		t.Errorf("memory.max = %q", got)
	}
	// Without the leaf (an explicit parent that is not ours) the error names the cause.
	writeFake(t, own, map[string]string{"cgroup.procs": "4444\n", "cgroup.subtree_control": ""})
	_, err := create(l, Spec{Parent: "/user.slice/app"}, "airlock-1-x")
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "cannot enable") {
		t.Errorf("explicit busy parent: err = %v, want EBUSY naming subtree_control", err)
	}
}
