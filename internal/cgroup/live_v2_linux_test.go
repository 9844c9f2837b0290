package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unifiedLayout is a v2 layout on this host's cgroup2 mount, at this
// process's own cgroup there, whatever controllers it has.
func unifiedLayout(t *testing.T) layout {
	t.Helper()
	pcb, _ := os.ReadFile("/proc/self/cgroup")
	mib, _ := os.ReadFile("/proc/self/mountinfo")
	pc, err := parseProcCgroup(string(pcb))
	if err != nil || !pc.hasUnified {
		t.Skipf("no cgroup2 hierarchy for this process (%v)", err)
	}
	for _, m := range parseMountinfo(string(mib)) {
		if m.fstype != "cgroup2" {
			continue
		}
		dir, ok := m.dirFor(pc.unified)
		if !ok {
			continue
		}
		if unix.Access(dir, unix.W_OK|unix.X_OK) != nil || unix.Access(filepath.Join(dir, "cgroup.procs"), unix.W_OK) != nil {
			t.Skipf("cannot create cgroups in the cgroup2 hierarchy at %s as uid %d (needs root or delegation)", dir, os.Getuid())
		}
		return layout{version: 2, dirs: map[string]string{"memory": dir}, mounts: map[string]mount{"memory": m}}
	}
	t.Skip("cgroup2 is not mounted")
	return layout{}
}

// The v2 driver against this kernel's own cgroup2 hierarchy. On the
// development host (cgroup v1 for every controller) that hierarchy has no
// controllers, so limits stay in the fake tests; what the kernel does with
// the core files is checked here: a child started straight into the group
// (CLONE_INTO_CGROUP through FD), one that moves itself in (JoinFiles) and
// leaves a setsid'd grandchild, CPU time from cpu.stat, cgroup.kill for the
// whole tree, and removal.
func TestV2CoreLive(t *testing.T) {
	l := unifiedLayout(t)
	g, err := create(l, Spec{CPUAccounting: true}, groupName(os.Getpid(), "v2live"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	dir := g.Dirs()[0]

	fd, err := g.FD()
	if err != nil {
		t.Fatal(err)
	}
	busy := exec.Command("sh", "-c", "while :; do :; done")
	busy.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if err := busy.Start(); err != nil {
		t.Fatalf("start into the group with CLONE_INTO_CGROUP: %v", err)
	}
	unix.Close(fd)
	defer func() { busy.Process.Kill(); busy.Wait() }()

	join, err := g.JoinFiles()
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sh", "-c", "echo 0 >&3; exec 3>&-; setsid sleep 600 & exec sleep 600")
	sleeper.ExtraFiles = []*os.File{os.NewFile(uintptr(join[0]), "cgroup.procs")}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	sleeper.ExtraFiles[0].Close()
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()

	var members []int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && len(members) < 3; time.Sleep(10 * time.Millisecond) {
		members, _ = g.procs()
	}
	if len(members) < 3 {
		g.Kill()
		var where []string
		for _, pid := range []int{busy.Process.Pid, sleeper.Process.Pid} {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			where = append(where, fmt.Sprintf("%d: %q", pid, b))
		}
		t.Fatalf("group %s members %v, want the busy loop, the sleeper and its setsid'd child; %s", dir, members, where)
	}
	for _, pid := range []int{busy.Process.Pid, sleeper.Process.Pid} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if !strings.Contains(string(b), "0::/") || !strings.HasSuffix(strings.TrimSpace(string(b)), filepath.Base(dir)) {
			t.Errorf("pid %d is in %q, want the group %s", pid, strings.TrimSpace(string(b)), filepath.Base(dir))
		}
	}

	time.Sleep(300 * time.Millisecond)
	st, err := g.Stats()
	if err != nil {
		t.Errorf("Stats: %v", err)
	}
	if st.CPUTime < 200*time.Millisecond || st.CPUTime > 5*time.Second {
		t.Errorf("cpu time %v after a 300 ms busy loop", st.CPUTime)
	}

	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range members {
		if !waitGone(pid) {
			t.Errorf("pid %d survived cgroup.kill", pid)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close (%v)", dir, err)
	}
}
