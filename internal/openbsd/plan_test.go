package openbsd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fakeHost(existing ...string) (Host, *[]string) {
	ex := map[string]bool{}
	for _, p := range existing {
		ex[p] = true
	}
	var temps []string
	return Host{
		Stat: func(p string) error {
			if ex[p] {
				return nil
			}
			return &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
		},
		Readlink: func(p string) (string, error) { return "", fs.ErrInvalid },
		TempDir: func(dest string) (string, error) {
			d := fmt.Sprintf("/tmp/airlock-x/%d", len(temps))
			temps = append(temps, d)
			return d, nil
		},
	}, &temps
}

func unveilMap(pl Plan) map[string]string {
	m := map[string]string{}
	for _, u := range pl.Unveils {
		m[u.Path] = u.Perms
	}
	return m
}

func TestPlanUnveilsAndPromises(t *testing.T) {
	h, _ := fakeHost("/usr", "/bin", "/home/al/proj", "/home/al", "/etc/ssl")
	base := Request{Path: "/usr/bin/env", Args: []string{"env"}, Home: "/home/al", Strict: true,
		Mounts: []Mount{{Kind: Bind, Source: "/usr", Dest: "/usr"}, {Kind: Bind, Source: "/bin", Dest: "/bin"},
			{Kind: Bind, Source: "/opt/none", Dest: "/opt/none", Optional: true},
			{Kind: Bind, Source: "/home/al/proj", Dest: "/home/al/proj", Writable: true},
			{Kind: Tmpfs, Dest: "/tmp"}, {Kind: Tmpfs, Dest: "/home/al"}},
		Env: []string{"HOME=/home/al", "X=/home/al/proj/y"}, Dir: "/home/al/proj"}
	for _, tc := range []struct {
		name       string
		mod        func(*Request)
		unveils    map[string]string // must be present with these perms
		absent     []string
		has, hasnt []string // promises
	}{
		{"default", func(*Request) {},
			map[string]string{"/usr": "rx", "/bin": "rx", "/home/al/proj": "rwxc", "/tmp/airlock-x/0": "rwxc",
				"/tmp/airlock-x/1": "rwxc", "/usr/libexec/ld.so": "rx", "/dev/null": "rw", "/etc/pwd.db": "r"},
			[]string{"/opt/none", "/etc/resolv.conf", "/etc/spwd.db", "/home/al", "/tmp", "/home/al/.ssh"},
			[]string{"stdio", "rpath", "wpath", "cpath", "proc", "exec", "prot_exec"},
			[]string{"inet", "dns", "tty", "id", "chown", "error"}},
		{"procs 1", func(r *Request) { r.Limits.Procs = 1 }, nil, nil,
			[]string{"stdio", "rpath"}, []string{"proc", "exec", "inet", "dns"}},
		{"host net", func(r *Request) { r.Net = NetHost }, map[string]string{"/etc/resolv.conf": "r", "/etc/ssl": "r"}, nil,
			[]string{"inet", "dns", "proc"}, nil},
		{"allow best effort", func(r *Request) { r.Net, r.Strict = NetAllow, false }, nil, nil, []string{"inet", "dns"}, nil},
		{"home bound rw hides secrets", func(r *Request) {
			r.Mounts = append(r.Mounts[:2], Mount{Kind: Bind, Source: "/home/al", Dest: "/home/al", Writable: true})
		}, map[string]string{"/home/al": "rwxc", "/home/al/.ssh": "", "/home/al/.config/gcloud": ""}, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Mounts = append([]Mount{}, base.Mounts...)
			tc.mod(&r)
			pl, err := BuildPlan(r, h)
			if err != nil {
				t.Fatal(err)
			}
			got := unveilMap(pl)
			for p, pm := range tc.unveils {
				if v, ok := got[p]; !ok || v != pm {
					t.Errorf("unveil %s = %q (present %v), want %q", p, v, ok, pm)
				}
			}
			for _, p := range tc.absent {
				if _, ok := got[p]; ok {
					t.Errorf("unexpected unveil %s", p)
				}
			}
			prom := " " + pl.ExecPromises + " "
			for _, p := range tc.has {
				if !strings.Contains(prom, " "+p+" ") {
					t.Errorf("promises %q lack %s", pl.ExecPromises, p)
				}
			}
			for _, p := range tc.hasnt {
				if strings.Contains(prom, " "+p+" ") {
					t.Errorf("promises %q include %s", pl.ExecPromises, p)
				}
			}
		})
	}
}

func TestPlanEnvAndDir(t *testing.T) {
	h, temps := fakeHost("/home/al/proj")
	pl, err := BuildPlan(Request{Path: "/bin/sh", Args: []string{"sh"},
		Mounts: []Mount{{Kind: Tmpfs, Dest: "/tmp"}, {Kind: Tmpfs, Dest: "/home/al"},
			{Kind: Bind, Source: "/home/al/proj", Dest: "/home/al/proj"}},
		Env: []string{"HOME=/home/al", "CACHE=/home/al/.cache", "SRC=/home/al/proj/x", "OTHER=/home/alice"},
		Dir: "/home/al/proj"}, h)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"HOME=/tmp/airlock-x/1", "CACHE=/tmp/airlock-x/1/.cache", "SRC=/home/al/proj/x",
		"OTHER=/home/alice", "TMPDIR=/tmp/airlock-x/0"}
	if !reflect.DeepEqual(pl.Env, want) || pl.Dir != "/home/al/proj" {
		t.Errorf("env %q dir %q, want %q /home/al/proj", pl.Env, pl.Dir, want)
	}
	if !reflect.DeepEqual(pl.TempDirs, *temps) || len(pl.TempDirs) != 2 {
		t.Errorf("TempDirs %q, created %q", pl.TempDirs, *temps)
	}
}

func TestPlanRelativeProgram(t *testing.T) {
	h, _ := fakeHost()
	pl, err := BuildPlan(Request{Path: "./bin/prog", Args: []string{"prog"}, Dir: "/home/al",
		Mounts: []Mount{{Kind: Tmpfs, Dest: "/home/al"}}}, h)
	if err != nil || pl.Path != "/tmp/airlock-x/0/bin/prog" {
		t.Errorf("path %q err %v, want the program under the working directory's stand-in", pl.Path, err)
	}
}

func TestPlanRlimits(t *testing.T) {
	h, _ := fakeHost()
	pl, err := BuildPlan(Request{Path: "/bin/sh", Args: []string{"sh"}, Strict: true,
		Limits: Limits{CPUTime: 2500 * time.Millisecond, FileSize: 1 << 20, OpenFiles: 32, Memory: 64 << 20, Procs: 1}}, h)
	if err != nil {
		t.Fatal(err)
	}
	want := []Rlimit{{"data", 64 << 20, 64 << 20}, {"cpu", 3, 3}, {"fsize", 1 << 20, 1 << 20}, {"nofile", 32, 32}, {"core", 0, 0}}
	if !reflect.DeepEqual(pl.Rlimits, want) {
		t.Errorf("rlimits %v, want %v", pl.Rlimits, want)
	}
}

func TestPlanErrors(t *testing.T) {
	h, _ := fakeHost("/a")
	for _, tc := range []struct {
		name string
		req  Request
		want string
		enf  bool
	}{
		{"bare program name", Request{Path: "sh"}, "want a path", false},
		{"bind elsewhere", Request{Path: "/x", Mounts: []Mount{{Kind: Bind, Source: "/a", Dest: "/b"}}}, "no unprivileged bind", false},
		{"missing", Request{Path: "/x", Mounts: []Mount{{Kind: Bind, Source: "/nope", Dest: "/nope"}}}, "/nope", false},
		{"allow strict", Request{Path: "/x", Strict: true, Net: NetAllow}, "network", true},
		{"memory tree strict", Request{Path: "/x", Strict: true, Limits: Limits{Memory: 1 << 30}}, "memory", true},
		{"procs strict", Request{Path: "/x", Strict: true, Limits: Limits{Procs: 4}}, "processes", true},
		{"cpus strict", Request{Path: "/x", Strict: true, Limits: Limits{CPUs: 1}}, "cpus", true},
		{"file strict", Request{Path: "/x", Strict: true, Mounts: []Mount{{Kind: File, Dest: "/f"}}}, "file", true},
	} {
		_, err := BuildPlan(tc.req, h)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrNotEnforceable) != tc.enf {
			t.Errorf("%s: err = %v, want mention of %q (not-enforceable %v)", tc.name, err, tc.want, tc.enf)
		}
	}
}

func TestStepsOrderAndRoundTrip(t *testing.T) {
	h, _ := fakeHost("/usr")
	pl, err := BuildPlan(Request{Path: "/usr/bin/true", Args: []string{"true"}, Dir: "/usr",
		Mounts: []Mount{{Kind: Bind, Source: "/usr", Dest: "/usr"}}, Limits: Limits{CPUTime: time.Second}}, h)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePlan(&buf, pl); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPlan(&buf)
	if err != nil {
		t.Fatal(err)
	}
	pl.TempDirs, pl.Notes = nil, nil
	if !reflect.DeepEqual(got, pl) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, pl)
	}
	steps := Steps(got)
	var calls []string
	for _, s := range steps {
		calls = append(calls, s.Call)
	}
	seq := strings.Join(calls, " ")
	// chdir and rlimits before unveil; the lock (empty unveil) before
	// pledge; exec last.
	if !strings.HasPrefix(seq, "chdir setrlimit setrlimit unveil") || !strings.HasSuffix(seq, "unveil pledge execve") {
		t.Errorf("steps order: %s", seq)
	}
	lock := steps[len(steps)-3]
	if lock.Arg1 != "" || lock.Arg2 != "" {
		t.Errorf("lock step %+v is not unveil(NULL, NULL)", lock)
	}
	if _, err := ReadPlan(strings.NewReader(`{"Path":""}`)); err == nil {
		t.Error("ReadPlan accepted a plan without a program")
	}
}
