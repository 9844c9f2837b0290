package cgroup

import (
	"maps"
	"slices"
	"testing"
)

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		v1         map[string]string
		unified    string
		hasUnified bool
		wantErr    bool
	}{
		{name: "v2 only", in: "0::/user.slice/user-1000.slice/session-2.scope\n",
			v1: map[string]string{}, unified: "/user.slice/user-1000.slice/session-2.scope", hasUnified: true},
		{name: "v1", in: "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n9:name=systemd:/init.scope\n",
			v1: map[string]string{"memory": "/process_api/abc", "cpu": "/", "cpuacct": "/", "name=systemd": "/init.scope"}},
		{name: "hybrid", in: "8:pids:/a\n6:freezer:/\n0::/a\n",
			v1: map[string]string{"pids": "/a", "freezer": "/"}, unified: "/a", hasUnified: true},
		{name: "path with colon", in: "0::/weird:name\n",
			v1: map[string]string{}, unified: "/weird:name", hasUnified: true},
		{name: "empty", in: "", v1: map[string]string{}},
		{name: "garbage", in: "nonsense\n", wantErr: true},
		{name: "relative path", in: "0::relative\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := parseProcCgroup(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !maps.Equal(pc.v1, tt.v1) || pc.unified != tt.unified || pc.hasUnified != tt.hasUnified {
				t.Errorf("got %+v, want v1=%v unified=%q has=%v", pc, tt.v1, tt.unified, tt.hasUnified)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	in := `23 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /process_api /mnt/my\040cg rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 master:3 - cgroup2 cgroup2 rw,nsdelegate
bad line
`
	got := parseMountinfo(in)
	want := []mount{
		{root: "/", point: "/sys/fs/cgroup/cpu,cpuacct", fstype: "cgroup", options: []string{"rw", "cpu", "cpuacct"}},
		{root: "/process_api", point: "/mnt/my cg", fstype: "cgroup", options: []string{"rw", "memory"}},
		{root: "/", point: "/sys/fs/cgroup/unified", fstype: "cgroup2", options: []string{"rw", "nsdelegate"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d mounts %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.root != w.root || g.point != w.point || g.fstype != w.fstype || !slices.Equal(g.options, w.options) {
			t.Errorf("mount %d = %+v, want %+v", i, g, w)
		}
	}
	if !got[0].has("cpuacct") || got[0].has("memory") || got[0].has("cpu,cpuacct") {
		t.Errorf("has() wrong for %+v", got[0])
	}
}

func TestMountDirFor(t *testing.T) {
	tests := []struct {
		root, point, path, want string
		ok                      bool
	}{
		{"/", "/sys/fs/cgroup/memory", "/process_api/x", "/sys/fs/cgroup/memory/process_api/x", true},
		{"/", "/sys/fs/cgroup", "/", "/sys/fs/cgroup", true},
		{"/process_api", "/mnt/cg", "/process_api/x", "/mnt/cg/x", true},
		{"/process_api", "/mnt/cg", "/process_api", "/mnt/cg", true},
		{"/process_api", "/mnt/cg", "/process_apix", "", false},
		{"/a", "/mnt/cg", "/b", "", false},
	}
	for _, tt := range tests {
		got, ok := mount{root: tt.root, point: tt.point}.dirFor(tt.path)
		if got != tt.want || ok != tt.ok {
			t.Errorf("dirFor(root %s, %s) = %q,%v want %q,%v", tt.root, tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseKeyed(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]uint64
	}{
		{"memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n",
			map[string]uint64{"low": 0, "high": 0, "max": 12, "oom": 2, "oom_kill": 1, "oom_group_kill": 0}},
		{"cpu.stat", "usage_usec 301234\nuser_usec 300000\nsystem_usec 1234\nnr_periods 0\n",
			map[string]uint64{"usage_usec": 301234, "user_usec": 300000, "system_usec": 1234, "nr_periods": 0}},
		{"pids.events", "max 3\n", map[string]uint64{"max": 3}},
		{"v1 oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
			map[string]uint64{"oom_kill_disable": 0, "under_oom": 0, "oom_kill": 4}},
		{"junk skipped", "a b\nc\nd 5 6\ne -1\nf 7", map[string]uint64{"f": 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseKeyed(tt.in); !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCPUQuota(t *testing.T) {
	tests := []struct {
		cpus  float64
		quota int64
		max   string
	}{
		{1.5, 150000, "150000 100000"},
		{1, 100000, "100000 100000"},
		{0.25, 25000, "25000 100000"},
		{4, 400000, "400000 100000"},
		{0.001, 1000, "1000 100000"}, // kernel minimum
		{0.0000001, 1000, "1000 100000"},
		{0, -1, "max 100000"},
		{-2, -1, "max 100000"},
	}
	for _, tt := range tests {
		if q := cpuQuota(tt.cpus); q != tt.quota {
			t.Errorf("cpuQuota(%v) = %d, want %d", tt.cpus, q, tt.quota)
		}
		if m := cpuMax(tt.cpus); m != tt.max {
			t.Errorf("cpuMax(%v) = %q, want %q", tt.cpus, m, tt.max)
		}
	}
}

func TestGroupName(t *testing.T) {
	if n := groupName(42, "ab12"); n != "airlock-42-ab12" {
		t.Fatalf("groupName = %q", n)
	}
	tests := []struct {
		in  string
		pid int
		ok  bool
	}{
		{"airlock-42-ab12", 42, true},
		{"airlock-1-x-y", 1, true},
		{"airlock-broker", 0, false},
		{"airlock-42-", 0, false},
		{"airlock-042-ab", 0, false},
		{"airlock--1-ab", 0, false},
		{"airlock-0-ab", 0, false},
		{"other-42-ab", 0, false},
		{"airlock-4x-ab", 0, false},
	}
	for _, tt := range tests {
		pid, ok := parseGroupName(tt.in)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("parseGroupName(%q) = %d,%v want %d,%v", tt.in, pid, ok, tt.pid, tt.ok)
		}
	}
}
