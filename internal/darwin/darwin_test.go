package darwin

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fakeHost is a macOS-like file tree: links maps symlinks to targets,
// exists lists every real path.
type fakeHost struct {
	links  map[string]string
	exists map[string]bool
	temps  int
}

func newFakeHost(paths ...string) *fakeHost {
	h := &fakeHost{
		links:  map[string]string{"/tmp": "private/tmp", "/var": "private/var", "/etc": "private/etc"},
		exists: map[string]bool{"/": true},
	}
	for _, p := range append(paths, "/private/tmp", "/private/var/folders/xy/T", "/private/etc/hosts", "/usr", "/bin") {
		for d := p; d != "/"; d = filepath.Dir(d) {
			h.exists[d] = true
		}
	}
	return h
}

func (h *fakeHost) eval(p string) (string, error) {
	out := "/"
	for _, c := range strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/") {
		if c == "" {
			continue
		}
		next := filepath.Join(out, c)
		for i := 0; i < 8; i++ {
			t, ok := h.links[next]
			if !ok {
				break
			}
			if !filepath.IsAbs(t) {
				t = filepath.Join(filepath.Dir(next), t)
			}
			next = filepath.Clean(t)
		}
		if !h.exists[next] {
			return "", &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
		}
		out = next
	}
	return out, nil
}

func (h *fakeHost) host() Host {
	return Host{
		EvalSymlinks: h.eval,
		Readlink: func(p string) (string, error) {
			if t, ok := h.links[p]; ok {
				return t, nil
			}
			return "", fs.ErrInvalid
		},
		TempDir: func(dest string) (string, error) {
			h.temps++
			d := fmt.Sprintf("/var/folders/xy/T/airlock-%d", h.temps)
			h.exists["/private"+d] = true
			return d, nil
		},
	}
}

func TestCanonical(t *testing.T) {
	h := newFakeHost("/Users/al/real/proj")
	h.links["/Users/al/link"] = "/Users/al/real"
	for _, tc := range []struct{ in, want string }{
		{"/tmp", "/private/tmp"},
		{"/tmp/x/y", "/private/tmp/x/y"}, // missing below an existing symlink
		{"/var/folders/xy/T", "/private/var/folders/xy/T"},
		{"/etc/hosts", "/private/etc/hosts"},
		{"/Users/al/link/proj", "/Users/al/real/proj"},
		{"/Users/al/link/new/../proj", "/Users/al/real/proj"},
		{"/usr/bin", "/usr/bin"},
		{"/tmpfoo", "/tmpfoo"}, // prefix, not a path component
		{"/private/tmp", "/private/tmp"},
	} {
		if got := Canonical(tc.in, h.eval); got != tc.want {
			t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// tricky are paths that would break or subvert a profile if spliced in.
var tricky = []string{
	"/Users/al/my project",
	`/Users/al/quote"d`,
	"/Users/al/paren(s)",
	"/Users/al/new\nline",
	`/Users/al/")(allow default)(`,
	`/Users/al/back\slash;comment`,
	"/Users/al/#|block|#",
}

func goldenCases() map[string]Request {
	home := "/Users/al"
	base := []Mount{{Kind: Bind, Source: "/usr", Dest: "/usr"}, {Kind: Bind, Source: "/bin", Dest: "/bin"},
		{Kind: Bind, Source: "/etc/hosts", Dest: "/etc/hosts", Optional: true},
		{Kind: Bind, Source: "/etc/missing", Dest: "/etc/missing", Optional: true}}
	def := Request{Mounts: append(append([]Mount{}, base...),
		Mount{Kind: Tmpfs, Dest: "/tmp", Writable: true},
		Mount{Kind: Tmpfs, Dest: home, Writable: true},
		Mount{Kind: Bind, Source: "/Users/al/proj", Dest: "/Users/al/proj"}),
		Env: []string{"PATH=/usr/bin:/bin", "HOME=" + home, "CACHE=" + home + "/.cache"},
		Dir: "/Users/al/proj", Tag: "run-1", Home: home, Strict: true, Launcher: true, TTYs: []string{"/dev/ttys003"},
		Limits: Limits{CPUTime: 1500 * time.Millisecond, FileSize: 1 << 20, OpenFiles: 64}}
	proxy := def
	proxy.Net, proxy.ProxyPort = NetProxy, 8123
	host := def
	host.Net = NetHost
	host.Limits = Limits{Procs: 1}
	host.Mounts = append(append([]Mount{}, base...), Mount{Kind: Bind, Source: home, Dest: home, Writable: true})
	tr := Request{Mounts: append([]Mount{}, base...), Tag: "t", Home: home, Strict: true}
	for _, p := range tricky {
		tr.Mounts = append(tr.Mounts, Mount{Kind: Bind, Source: p, Dest: p, Writable: strings.Contains(p, "(")})
	}
	return map[string]Request{"default": def, "proxy": proxy, "host_nofork": host, "tricky": tr}
}

func TestGolden(t *testing.T) {
	for name, req := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			h := newFakeHost(append([]string{"/Users/al/proj", "/Users/al/.ssh", "/Users/al/.aws"}, tricky...)...)
			pl, err := Prepare(req, h.host())
			if err != nil {
				t.Fatal(err)
			}
			prof, err := Generate(pl.Spec)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString(prof.Text)
			b.WriteString("--- params\n")
			for _, p := range prof.Params {
				fmt.Fprintf(&b, "%s=%q\n", p.Name, p.Value)
			}
			fmt.Fprintf(&b, "--- env\n%q\n--- dir\n%q\n--- rlimits\n%v\n--- notes\n", pl.Env, pl.Dir, pl.Rlimits)
			for _, n := range pl.Notes {
				fmt.Fprintf(&b, "%s %s %s: %s\n", n.Name, n.State, n.Mechanism, n.Detail)
			}
			file := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got := b.String(); got != string(want) {
				gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := 0; i < len(gl) || i < len(wl); i++ {
					g, w := "<end>", "<end>"
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Errorf("%s line %d:\n got %s\nwant %s\n(run with -update after checking)", file, i+1, g, w)
						break
					}
				}
			}
		})
	}
}

// TestUserStringsOnlyAsParams: no user-controlled path appears in the
// profile text, and each one round-trips through sandbox-exec's argv.
func TestUserStringsOnlyAsParams(t *testing.T) {
	spec := Spec{Tag: "x", ReadOnly: tricky[:4], ReadWrite: tricky[4:], Deny: []string{tricky[1] + "/.ssh", tricky[4] + "/sub/key"}}
	prof, err := Generate(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(append(append([]string{}, tricky...), spec.Deny...), "Users", "/Users/al") {
		if strings.Contains(prof.Text, p) {
			t.Errorf("profile text contains user string %q", p)
		}
	}
	if strings.Count(prof.Text, "(allow default") != 0 {
		t.Error("profile contains (allow default")
	}
	argv := []string{"/bin/echo", "a b", `")(`}
	got, gotArgv, err := ParseArgs(prof.Args(argv))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, prof) || !reflect.DeepEqual(gotArgv, argv) {
		t.Errorf("round trip: got %+v %q", got, gotArgv)
	}
	vals := map[string]bool{}
	for _, p := range prof.Params {
		vals[p.Value] = true
		if !strings.Contains(prof.Text, fmt.Sprintf("(param %q)", p.Name)) {
			t.Errorf("param %s not referenced", p.Name)
		}
	}
	for _, p := range append(append(append([]string{}, tricky...), spec.Deny...), "/Users/al/quote\"d", `/Users/al/")(allow default)(/sub/key`) {
		if !vals[p] {
			t.Errorf("path %q missing from parameters", p)
		}
	}
	// Balanced parentheses outside strings: the structure is ours alone.
	depth := 0
	inStr := false
	for i := 0; i < len(prof.Text); i++ {
		switch c := prof.Text[i]; {
		case c == '"' && (i == 0 || prof.Text[i-1] != '\\'):
			inStr = !inStr
		case inStr:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				t.Fatalf("unbalanced ) at %d", i)
			}
		}
	}
	if depth != 0 || inStr {
		t.Errorf("unbalanced profile: depth %d, open string %v", depth, inStr)
	}
}

func TestRuleOrder(t *testing.T) {
	prof, err := Generate(Spec{Tag: "x", ReadWrite: []string{"/Users/al"}, Deny: []string{"/Users/al/.ssh"}, Net: NetHost})
	if err != nil {
		t.Fatal(err)
	}
	lastAllow := strings.LastIndex(prof.Text, "(allow ")
	firstDeny := strings.Index(prof.Text, "(deny file-read*")
	if firstDeny < lastAllow {
		t.Errorf("secret deny at %d precedes an allow at %d: last match would re-allow it", firstDeny, lastAllow)
	}
	if !strings.Contains(prof.Text, `(deny file-write-unlink (literal (param "DENYUP_0"))`) {
		t.Error("no unlink denial for the ancestors of a denied path")
	}
	if !strings.Contains(prof.Text, `(global-name "com.apple.pasteboard.1")`) {
		t.Error("pasteboard not denied")
	}
	if strings.Contains(prof.Text, "file-ioctl (literal (param") || strings.Contains(prof.Text, "pseudo-tty") {
		t.Error("terminal ioctls allowed: TIOCSTI could inject input into the user's shell")
	}
}

func TestGenerateRejects(t *testing.T) {
	for name, s := range map[string]Spec{
		"tag with quote": {Tag: `a"b`},
		"empty tag":      {},
		"relative path":  {Tag: "x", ReadOnly: []string{"rel"}},
		"nul":            {Tag: "x", ReadWrite: []string{"/a\x00b"}},
		"proxy no port":  {Tag: "x", Net: NetProxy},
		"proxy big port": {Tag: "x", Net: NetProxy, ProxyPort: 70000},
	} {
		if _, err := Generate(s); err == nil {
			t.Errorf("%s: Generate accepted %+v", name, s)
		}
	}
}

func TestNetworkRules(t *testing.T) {
	for _, tc := range []struct {
		mode       NetMode
		want, deny []string
	}{
		{NetNone, nil, []string{"network", "system-socket", "dnssd"}},
		{NetProxy, []string{`(allow network-outbound (remote ip "localhost:8123"))`}, []string{"network*", "system-socket", "dnssd", "local ip"}},
		{NetHost, []string{"(allow network* system-socket)", "com.apple.dnssd.service"}, nil},
	} {
		prof, err := Generate(Spec{Tag: "x", Net: tc.mode, ProxyPort: 8123})
		if err != nil {
			t.Fatal(err)
		}
		var rules []string
		for _, l := range strings.Split(prof.Text, "\n") {
			if !strings.HasPrefix(l, ";") {
				rules = append(rules, l)
			}
		}
		text := strings.Join(rules, "\n")
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("mode %d: missing %s", tc.mode, w)
			}
		}
		for _, d := range tc.deny {
			if strings.Contains(text, "(allow "+d) || (d != "network" && strings.Contains(text, d)) {
				t.Errorf("mode %d: unexpected %s", tc.mode, d)
			}
		}
	}
}

func TestPrepareErrors(t *testing.T) {
	h := newFakeHost("/Users/al/proj")
	for _, tc := range []struct {
		name string
		req  Request
		want string
		enf  bool
	}{
		{"bind elsewhere", Request{Mounts: []Mount{{Kind: Bind, Source: "/Users/al/proj", Dest: "/work"}}}, "no bind mounts", false},
		{"missing source", Request{Mounts: []Mount{{Kind: Bind, Source: "/nope", Dest: "/nope"}}}, "/nope", false},
		{"memory strict", Request{Strict: true, Limits: Limits{Memory: 1 << 30}}, "memory", true},
		{"procs strict", Request{Strict: true, Limits: Limits{Procs: 10}}, "processes", true},
		{"cpus strict", Request{Strict: true, Limits: Limits{CPUs: 0.5}}, "cpus", true},
		{"no launcher strict", Request{Strict: true, Limits: Limits{CPUTime: time.Second}}, "launcher", true},
		{"symlink strict", Request{Strict: true, Mounts: []Mount{{Kind: Symlink, Source: "x", Dest: "/y"}}}, "symlink", true},
		{"file strict", Request{Strict: true, Mounts: []Mount{{Kind: File, Dest: "/y"}}}, "file", true},
	} {
		_, err := Prepare(tc.req, h.host())
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrNotEnforceable) != tc.enf {
			t.Errorf("%s: err = %v, want mention of %q (not-enforceable %v)", tc.name, err, tc.want, tc.enf)
		}
	}
}

func TestPrepareBestEffort(t *testing.T) {
	h := newFakeHost()
	pl, err := Prepare(Request{Limits: Limits{Memory: 1 << 30, Procs: 5, CPUTime: time.Second},
		Mounts: []Mount{{Kind: Symlink, Source: "private/tmp", Dest: "/tmp"}, {Kind: File, Dest: "/f"}}}, h.host())
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, n := range pl.Notes {
		state[n.Name] = n.State
	}
	want := map[string]string{"memory": "off", "processes": "off", "cpu-time": "off",
		"filesystem": "degraded", "process-tree": "degraded", "network": "enforced"}
	for k, v := range want {
		if state[k] != v {
			t.Errorf("note %s = %q, want %q (all: %v)", k, state[k], v, state)
		}
	}
	if len(pl.Rlimits) != 0 {
		t.Errorf("rlimits without a launcher: %v", pl.Rlimits)
	}
	if !strings.Contains(fmt.Sprint(pl.Notes), "file /f not created") || strings.Contains(fmt.Sprint(pl.Notes), "symlink /tmp") {
		t.Errorf("notes: %v", pl.Notes)
	}
}

func TestLauncherArgsRoundTrip(t *testing.T) {
	rl := []Rlimit{{"cpu", 2, 3}, {"core", 0, 0}}
	argv := []string{SandboxExec, "-p", "(version 1)", "--", "/bin/sh", "--", "x=1:2"}
	args := LauncherArgs(rl, argv)
	if args[0] != LauncherArg {
		t.Fatalf("args[0] = %q", args[0])
	}
	gotRL, gotArgv, err := ParseLauncherArgs(args[1:])
	if err != nil || !reflect.DeepEqual(gotRL, rl) || !reflect.DeepEqual(gotArgv, argv) {
		t.Errorf("round trip: %v %q %v", gotRL, gotArgv, err)
	}
	for _, bad := range [][]string{{"cpu=1", "--", "x"}, {"cpu=a:b", "--", "x"}, {"--"}, {"cpu=1:2"}} {
		if _, _, err := ParseLauncherArgs(bad); err == nil {
			t.Errorf("ParseLauncherArgs(%q) accepted", bad)
		}
	}
}

func TestParseLog(t *testing.T) {
	in := `{"eventMessage":"Sandbox: cat(501) deny(1) file-read-data /Users/al/.ssh/id_rsa airlock:r1","processID":0}
{"eventMessage":"Sandbox: cat(501) deny(1) file-read-data /Users/al/.aws/credentials airlock:r1"}
{"eventMessage":"Sandbox: curl(502) deny(1) network-outbound 1.2.3.4:443 airlock:r1"}
{"eventMessage":"Sandbox: other(9) deny(1) file-read-data /x airlock:r2"}
not json
{"eventMessage":"Sandbox: python(7) deny(2) mach-lookup com.apple.pasteboard.1 airlock:r1"}
`
	got := ParseLog(strings.NewReader(in), "r1")
	want := []Denial{{"file-read-data", "/Users/al/.ssh/id_rsa", 2}, {"network-outbound", "1.2.3.4:443", 1},
		{"mach-lookup", "com.apple.pasteboard.1", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseLog = %+v, want %+v", got, want)
	}
	args := LogShowArgs("r1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local))
	if strings.Join(args, " ") != `show --style ndjson --start 2026-01-02 03:04:04 --predicate eventMessage CONTAINS "airlock:r1"` {
		t.Errorf("LogShowArgs = %q", args)
	}
}
