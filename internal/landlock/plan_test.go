package landlock

import (
	"slices"
	"strings"
	"testing"
)

// fullRequest asks for every feature, so each ABI shows its downgrades.
var fullRequest = Request{
	ReadOnly:          []string{"/usr", "/etc/resolv.conf", "/work/"},
	ReadWrite:         []string{"/tmp", "/work"},
	RestrictNet:       true,
	ConnectTCP:        []uint16{443, 80},
	BindTCP:           []uint16{8080, 443},
	ScopeSignals:      true,
	ScopeAbstractUnix: true,
	Audit:             true,
}

func TestPlanByABI(t *testing.T) {
	// Expected masks are the kernel's uapi values, written out by hand.
	tests := []struct {
		abi             int
		level           int
		fs, net, scoped uint64
		flags           uint32
		downgrades      []string // features, in order
		weakens         []string
		ports           int
	}{
		{abi: 0, downgrades: []string{"landlock"}, weakens: []string{"landlock"}},
		{abi: 1, level: 1, fs: 0x1fff,
			downgrades: []string{"refer", "truncate", "ioctl_dev", "tcp", "scope_signal", "scope_abstract_unix", "audit"},
			weakens:    []string{"truncate", "ioctl_dev", "tcp", "scope_signal", "scope_abstract_unix"}},
		{abi: 2, level: 2, fs: 0x3fff,
			downgrades: []string{"truncate", "ioctl_dev", "tcp", "scope_signal", "scope_abstract_unix", "audit"},
			weakens:    []string{"truncate", "ioctl_dev", "tcp", "scope_signal", "scope_abstract_unix"}},
		{abi: 3, level: 3, fs: 0x7fff,
			downgrades: []string{"ioctl_dev", "tcp", "scope_signal", "scope_abstract_unix", "audit"},
			weakens:    []string{"ioctl_dev", "tcp", "scope_signal", "scope_abstract_unix"}},
		{abi: 4, level: 4, fs: 0x7fff, net: 3, ports: 3,
			downgrades: []string{"ioctl_dev", "scope_signal", "scope_abstract_unix", "audit"},
			weakens:    []string{"ioctl_dev", "scope_signal", "scope_abstract_unix"}},
		{abi: 5, level: 5, fs: 0xffff, net: 3, ports: 3,
			downgrades: []string{"scope_signal", "scope_abstract_unix", "audit"},
			weakens:    []string{"scope_signal", "scope_abstract_unix"}},
		{abi: 6, level: 6, fs: 0xffff, net: 3, scoped: 3, ports: 3,
			downgrades: []string{"audit"}},
		{abi: 7, level: 7, fs: 0xffff, net: 3, scoped: 3, flags: 2, ports: 3},
		{abi: 9, level: 7, fs: 0xffff, net: 3, scoped: 3, flags: 2, ports: 3},
	}
	for _, tt := range tests {
		rs, dg, err := Plan(fullRequest, tt.abi)
		if err != nil {
			t.Fatalf("ABI %d: %v", tt.abi, err)
		}
		if rs.ABI != tt.level || rs.HandledFS != tt.fs || rs.HandledNet != tt.net || rs.Scoped != tt.scoped || rs.Flags != tt.flags {
			t.Errorf("ABI %d: got level %d fs %#x net %#x scoped %#x flags %#x, want %d %#x %#x %#x %#x",
				tt.abi, rs.ABI, rs.HandledFS, rs.HandledNet, rs.Scoped, rs.Flags, tt.level, tt.fs, tt.net, tt.scoped, tt.flags)
		}
		var feats, weak []string
		for _, d := range dg {
			feats = append(feats, d.Feature)
			if d.Weakens {
				weak = append(weak, d.Feature)
			}
			if d.Reason == "" {
				t.Errorf("ABI %d: downgrade %s has no reason", tt.abi, d.Feature)
			}
		}
		if !slices.Equal(feats, tt.downgrades) || !slices.Equal(weak, tt.weakens) {
			t.Errorf("ABI %d: downgrades %v (weakening %v), want %v (%v)", tt.abi, feats, weak, tt.downgrades, tt.weakens)
		}
		if len(rs.Ports) != tt.ports {
			t.Errorf("ABI %d: %d port rules, want %d", tt.abi, len(rs.Ports), tt.ports)
		}
		if tt.abi == 0 {
			if len(rs.Paths) != 0 {
				t.Errorf("ABI 0: path rules %v", rs.Paths)
			}
			continue
		}
		want := map[string]uint64{
			"/etc/resolv.conf": 0x5 | 0x8, // execute, read_file, read_dir
			"/usr":             0xd,
			"/tmp":             tt.fs,
			"/work":            tt.fs, // read-only and read-write merge
		}
		if len(rs.Paths) != len(want) {
			t.Errorf("ABI %d: paths %v", tt.abi, rs.Paths)
		}
		for i, p := range rs.Paths {
			if i > 0 && rs.Paths[i-1].Path >= p.Path {
				t.Errorf("ABI %d: paths not sorted: %v", tt.abi, rs.Paths)
			}
			if want[p.Path] != p.Access {
				t.Errorf("ABI %d: %s access %#x, want %#x", tt.abi, p.Path, p.Access, want[p.Path])
			}
		}
		// Read-write includes refer from ABI 2 on, so files move between
		// read-write directories.
		if tt.level >= 2 && rs.Paths[slices.IndexFunc(rs.Paths, func(p PathRule) bool { return p.Path == "/tmp" })].Access&0x2000 == 0 {
			t.Errorf("ABI %d: /tmp lacks refer", tt.abi)
		}
	}
}

func TestPlanPorts(t *testing.T) {
	rs, _, err := Plan(fullRequest, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []PortRule{{80, 2}, {443, 3}, {8080, 1}} // connect=2, bind=1
	if !slices.Equal(rs.Ports, want) {
		t.Errorf("ports %v, want %v", rs.Ports, want)
	}
}

func TestPlanOptionalFeatures(t *testing.T) {
	// Nothing but paths: no net, no scopes, no flags, no downgrades at 7.
	rs, dg, err := Plan(Request{ReadOnly: []string{"/"}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if rs.HandledNet != 0 || rs.Scoped != 0 || rs.Flags != 0 || len(dg) != 0 {
		t.Errorf("unrequested features: %+v %v", rs, dg)
	}
	// RestrictNet with no ports denies all TCP: net handled, no rules.
	rs, _, err = Plan(Request{RestrictNet: true}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if rs.HandledNet != 3 || len(rs.Ports) != 0 {
		t.Errorf("deny-all net: handled %#x ports %v", rs.HandledNet, rs.Ports)
	}
}

func TestPlanErrors(t *testing.T) {
	bad := []struct {
		name string
		req  Request
		abi  int
	}{
		{"relative", Request{ReadOnly: []string{"usr"}}, 7},
		{"empty", Request{ReadWrite: []string{""}}, 7},
		{"nul", Request{ReadOnly: []string{"/a\x00b"}}, 7},
		{"ports without RestrictNet", Request{ConnectTCP: []uint16{80}}, 7},
		{"negative abi", Request{}, -1},
	}
	for _, tt := range bad {
		if _, _, err := Plan(tt.req, tt.abi); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestRulesetString(t *testing.T) {
	rs, _, err := Plan(fullRequest, 7)
	if err != nil {
		t.Fatal(err)
	}
	s := rs.String()
	for _, want := range []string{
		"landlock ABI 7\n",
		"allow \"/usr\": read-only (execute,read_file,read_dir)\n",
		"allow \"/tmp\": read-write (all)\n",
		"allow tcp port 443: bind_tcp,connect_tcp\n",
		"scoped: abstract_unix_socket,signal\n",
		"restrict_self flags: log_new_exec_on\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	rs, _, _ = Plan(Request{ReadOnly: []string{"/"}}, 3)
	if s := rs.String(); !strings.Contains(s, "handled net: none (TCP not restricted)") || strings.Contains(s, "ioctl_dev") {
		t.Errorf("ABI 3 String():\n%s", s)
	}
	if s := (&Ruleset{}).String(); s != "landlock: not used\n" {
		t.Errorf("empty ruleset: %q", s)
	}
}

func TestPrepareRejects(t *testing.T) {
	bad := []*Ruleset{
		{ABI: 8, HandledFS: 1},
		{ABI: 1, HandledFS: 0},
		{ABI: 1, HandledFS: 0x3fff},                          // refer at ABI 1
		{ABI: 3, HandledFS: 0x7fff, HandledNet: 3},           // net at ABI 3
		{ABI: 5, HandledFS: 0xffff, Scoped: 1},               // scope at ABI 5
		{ABI: 6, HandledFS: 0xffff, Flags: 2},                // log flag at ABI 6
		{ABI: 7, HandledFS: 1, Paths: []PathRule{{"/x", 2}}}, // right not handled
		{ABI: 7, HandledFS: 1, Paths: []PathRule{{"/x", 0}}}, // empty access
		{ABI: 7, HandledFS: 1, Paths: []PathRule{{"x", 1}}},  // relative
		{ABI: 7, HandledFS: 1, Ports: []PortRule{{80, 2}}},   // net not handled
	}
	for i, rs := range bad {
		if err := rs.check(); err == nil {
			t.Errorf("case %d: %+v accepted", i, rs)
		}
	}
	good, _, _ := Plan(fullRequest, 7)
	if err := good.check(); err != nil {
		t.Errorf("planned ruleset rejected: %v", err)
	}
}
