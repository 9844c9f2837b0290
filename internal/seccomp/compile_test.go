package seccomp

import (
	"slices"
	"strings"
	"testing"
)

func mustNr(t testing.TB, arch, name string) uint32 {
	t.Helper()
	nr, ok := SyscallNumber(arch, name)
	if !ok {
		t.Fatalf("no syscall %s on %s", name, arch)
	}
	return uint32(nr)
}

func auditArch(t testing.TB, arch string) uint32 {
	a, err := getArch(arch)
	if err != nil {
		t.Fatal(err)
	}
	return a.auditArch
}

const (
	auditArchI386 = 0x40000003
	cloneNewUser  = 0x10000000
	sigchld       = 17
	// flags glibc passes for fork() and pthread_create().
	forkFlags   = 0x01200000 | sigchld // CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
	threadFlags = 0x003d0f00
)

type call struct {
	arch    string
	audit   uint32 // 0: the arch's own
	name    string // or nr when empty
	nr      uint32
	args    [6]uint64
	want    Action
	comment string
}

func evalCall(t *testing.T, progs map[string][]SockFilter, c call) Action {
	t.Helper()
	d := seccompData{nr: c.nr, arch: c.audit, args: c.args}
	if c.name != "" {
		d.nr = mustNr(t, c.arch, c.name)
	}
	if d.arch == 0 {
		d.arch = auditArch(t, c.arch)
	}
	r, err := runBPF(progs[c.arch], &d)
	if err != nil {
		t.Fatalf("%s: %v", c.comment, err)
	}
	return ActionFromRet(r)
}

func compileAll(t *testing.T, f *Filter) map[string][]SockFilter {
	t.Helper()
	progs := map[string][]SockFilter{}
	for _, arch := range Arches() {
		p, err := f.Compile(arch)
		if err != nil {
			t.Fatalf("compile %s/%s: %v", f.Name, arch, err)
		}
		if err := checkProg(p); err != nil {
			t.Fatalf("compile %s/%s: invalid program: %v", f.Name, arch, err)
		}
		progs[arch] = p
	}
	return progs
}

func TestDefaultPresetTable(t *testing.T) {
	f, err := Preset("default")
	if err != nil {
		t.Fatal(err)
	}
	progs := compileAll(t, f)
	EPERM, ENOSYS := Errno(eperm), Errno(enosys)
	var cases []call
	for _, arch := range Arches() {
		cs := []call{
			{name: "read", want: Allow},
			{name: "write", want: Allow},
			{name: "execve", want: Allow},
			{name: "ptrace", want: EPERM},
			{name: "process_vm_readv", want: EPERM},
			{name: "process_vm_writev", want: EPERM},
			{name: "pidfd_getfd", want: EPERM},
			{name: "keyctl", want: EPERM},
			{name: "add_key", want: EPERM},
			{name: "request_key", want: EPERM},
			{name: "bpf", want: EPERM},
			{name: "perf_event_open", want: EPERM},
			{name: "userfaultfd", want: EPERM},
			{name: "io_uring_setup", want: ENOSYS},
			{name: "io_uring_enter", want: ENOSYS},
			{name: "io_uring_register", want: ENOSYS},
			{name: "kexec_load", want: EPERM},
			{name: "kexec_file_load", want: EPERM},
			{name: "init_module", want: EPERM},
			{name: "finit_module", want: EPERM},
			{name: "delete_module", want: EPERM},
			{name: "mount", want: EPERM},
			{name: "umount2", want: EPERM},
			{name: "pivot_root", want: EPERM},
			{name: "chroot", want: EPERM},
			{name: "fsopen", want: ENOSYS},
			{name: "fsconfig", want: ENOSYS},
			{name: "fsmount", want: ENOSYS},
			{name: "fspick", want: ENOSYS},
			{name: "open_tree", want: ENOSYS},
			{name: "move_mount", want: ENOSYS},
			{name: "mount_setattr", want: ENOSYS},
			{name: "unshare", args: [6]uint64{cloneNewUser}, want: EPERM},
			{name: "setns", want: EPERM},
			{name: "open_by_handle_at", want: EPERM},
			{name: "syslog", want: EPERM},
			{name: "acct", want: EPERM},
			{name: "swapon", want: EPERM},
			{name: "swapoff", want: EPERM},
			{name: "reboot", want: EPERM},
			{name: "quotactl", want: EPERM},
			{name: "nfsservctl", want: EPERM},
			{name: "lookup_dcookie", want: EPERM},
			{name: "kcmp", want: EPERM},
			{name: "process_madvise", want: EPERM},
			{name: "move_pages", want: EPERM},
			{name: "mbind", want: EPERM},
			{name: "migrate_pages", want: EPERM},
			{name: "set_mempolicy", want: EPERM},
			{name: "clock_settime", want: EPERM},
			{name: "settimeofday", want: EPERM},
			{name: "adjtimex", want: EPERM},
			{name: "clock_adjtime", want: EPERM},
			{name: "clone3", want: ENOSYS},
			{name: "clone", args: [6]uint64{forkFlags}, want: Allow, comment: "fork-style clone"},
			{name: "clone", args: [6]uint64{threadFlags}, want: Allow, comment: "pthread clone"},
			{name: "clone", args: [6]uint64{forkFlags | cloneNewUser}, want: EPERM, comment: "clone CLONE_NEWUSER"},
			{name: "clone", args: [6]uint64{forkFlags | 0x00020000}, want: EPERM, comment: "clone CLONE_NEWNS"},
			{name: "clone", args: [6]uint64{0x40000000}, want: EPERM, comment: "clone CLONE_NEWNET"},
			{name: "ioctl", args: [6]uint64{0, tiocsti}, want: EPERM, comment: "TIOCSTI"},
			{name: "ioctl", args: [6]uint64{0, 0x123<<32 | tiocsti}, want: EPERM, comment: "TIOCSTI high bits (CVE-2019-10063)"},
			{name: "ioctl", args: [6]uint64{0, 0xffffffff<<32 | tiocsti}, want: EPERM, comment: "TIOCSTI all high bits"},
			{name: "ioctl", args: [6]uint64{0, tioclinux}, want: EPERM, comment: "TIOCLINUX"},
			{name: "ioctl", args: [6]uint64{0, 7<<32 | tioclinux}, want: EPERM, comment: "TIOCLINUX high bits"},
			{name: "ioctl", args: [6]uint64{0, 0x5401}, want: Allow, comment: "TCGETS"},
			{name: "ioctl", args: [6]uint64{0, 1<<32 | 0x5401}, want: Allow, comment: "TCGETS high bits"},
			{name: "socket", args: [6]uint64{38, 5}, want: EPERM, comment: "AF_ALG"},
			{name: "socket", args: [6]uint64{40, 1}, want: EPERM, comment: "AF_VSOCK"},
			{name: "socket", args: [6]uint64{17, 3}, want: EPERM, comment: "AF_PACKET"},
			{name: "socket", args: [6]uint64{1<<32 | 38, 5}, want: EPERM, comment: "AF_ALG high bits"},
			{name: "socket", args: [6]uint64{afInet, 1}, want: Allow, comment: "AF_INET"},
			{name: "socket", args: [6]uint64{afInet6, 2}, want: Allow, comment: "AF_INET6"},
			{name: "socket", args: [6]uint64{afUnix, 1}, want: Allow, comment: "AF_UNIX"},
			{name: "socket", args: [6]uint64{afNetlink, 3, netlinkRoute}, want: Allow, comment: "NETLINK_ROUTE"},
			{name: "socket", args: [6]uint64{afNetlink, 3, 12}, want: EPERM, comment: "NETLINK_NETFILTER"},
			{name: "personality", args: [6]uint64{0xffffffff}, want: Allow},
			{name: "personality", args: [6]uint64{0}, want: Allow},
			{name: "personality", args: [6]uint64{0x400000}, want: EPERM, comment: "READ_IMPLIES_EXEC"},
			{name: "personality", args: [6]uint64{0x0040000}, want: EPERM, comment: "ADDR_NO_RANDOMIZE"},
			{name: "sched_setscheduler", args: [6]uint64{0, schedFIFO}, want: EPERM},
			{name: "sched_setscheduler", args: [6]uint64{0, schedRR | schedResetOnFork}, want: EPERM},
			{name: "sched_setscheduler", args: [6]uint64{0, 3}, want: Allow, comment: "SCHED_BATCH"},
			{nr: 1000, want: ENOSYS, comment: "unknown number 1000"},
			{nr: 0x3fffffff, want: ENOSYS, comment: "unknown high number"},
			{name: "landlock_create_ruleset", want: Allow},
			{name: "memfd_secret", want: Allow},
			{name: "cachestat", want: Allow},
			{name: "futex_waitv", want: Allow},
			{name: "fchmodat2", want: Allow},
			{name: "mseal", want: Allow},
			{name: "lsm_get_self_attr", want: EPERM},
			{name: "getpid", audit: auditArchI386, want: KillProcess, comment: "i386 ABI"},
			{name: "read", audit: 0x40000028, want: KillProcess, comment: "arm (32-bit) ABI"},
		}
		for _, c := range cs {
			c.arch = arch
			cases = append(cases, c)
		}
	}
	amd := []call{
		{nr: x32SyscallBit | 39, want: KillProcess, comment: "x32 getpid"},
		{nr: x32SyscallBit | 272, want: KillProcess, comment: "x32 unshare"},
		{nr: 0xffffffff, want: KillProcess, comment: "nr -1"},
		{name: "iopl", want: EPERM},
		{name: "ioperm", want: EPERM},
		{name: "modify_ldt", want: EPERM},
		{name: "uselib", want: EPERM},
		{name: "arch_prctl", want: Allow},
		{name: "open", want: Allow},
		{name: "fork", want: Allow},
		{name: "map_shadow_stack", want: Allow},
		{name: "listmount", want: Allow},
		{name: "statmount", want: Allow},
		{nr: 20, audit: auditArchI386, want: KillProcess, comment: "i386 int 0x80 getpid"},
		{nr: 102, audit: auditArchI386, args: [6]uint64{1}, want: KillProcess, comment: "i386 socketcall (F5)"},
	}
	for _, c := range amd {
		c.arch = "amd64"
		cases = append(cases, c)
	}
	cases = append(cases, call{arch: "arm64", nr: 244, want: ENOSYS, comment: "arm64 arch-specific gap"})
	cases = append(cases, call{arch: "arm64", nr: x32SyscallBit | 39, want: ENOSYS, comment: "no x32 on arm64"})

	for _, c := range cases {
		got := evalCall(t, progs, c)
		label := c.arch + " " + c.name + " " + c.comment
		if got != c.want {
			t.Errorf("%s: got %v, want %v", label, got, c.want)
		}
		// The reference evaluator must agree whenever the arch matches.
		if c.audit == 0 {
			nr := c.nr
			if c.name != "" {
				nr = mustNr(t, c.arch, c.name)
			}
			if ref := f.Decide(c.arch, int(nr), c.args); ref != got {
				t.Errorf("%s: Decide says %v, BPF says %v", label, ref, got)
			}
		}
	}
}

func TestStrictPresetTable(t *testing.T) {
	f, _ := Preset("strict")
	progs := compileAll(t, f)
	cases := []call{
		{name: "read", want: Allow},
		{name: "mmap", want: Allow},
		{name: "execve", want: Allow},
		{name: "execveat", want: KillProcess},
		{name: "socket", args: [6]uint64{afInet, 1}, want: KillProcess},
		{name: "socket", args: [6]uint64{afUnix, 1}, want: KillProcess},
		{name: "clone", args: [6]uint64{threadFlags}, want: Allow, comment: "thread"},
		{name: "clone", args: [6]uint64{forkFlags}, want: KillProcess, comment: "fork via clone"},
		{name: "clone", args: [6]uint64{threadFlags | cloneNewUser}, want: KillProcess, comment: "thread + NEWUSER"},
		{name: "fork", want: KillProcess},
		{name: "vfork", want: KillProcess},
		{name: "clone3", want: Errno(enosys)},
		{name: "ptrace", want: KillProcess},
		{name: "ioctl", args: [6]uint64{1, 0x123<<32 | tiocsti}, want: KillProcess},
		{name: "ioctl", args: [6]uint64{1, 0x5401}, want: Allow},
		{nr: 1000, want: Errno(enosys)},
		{nr: x32SyscallBit | 0, want: KillProcess},
	}
	for _, c := range cases {
		c.arch = "amd64"
		if got := evalCall(t, progs, c); got != c.want {
			t.Errorf("strict %s %s: got %v, want %v", c.name, c.comment, got, c.want)
		}
	}
}

func TestPermissivePresetTable(t *testing.T) {
	f, _ := Preset("permissive")
	progs := compileAll(t, f)
	cases := []call{
		{name: "ptrace", want: Allow},
		{name: "personality", args: [6]uint64{0x0040000}, want: Allow},
		{name: "reboot", want: Errno(eperm)},
		{name: "bpf", want: Errno(eperm)},
		{name: "io_uring_setup", want: Errno(enosys)},
		{name: "clone3", want: Errno(enosys)},
		{name: "clone", args: [6]uint64{forkFlags | cloneNewUser}, want: Errno(eperm)},
		{name: "clone", args: [6]uint64{forkFlags}, want: Allow},
		{name: "socket", args: [6]uint64{38, 5}, want: Errno(eperm)},
		{name: "socket", args: [6]uint64{afInet, 1}, want: Allow},
		{name: "ioctl", args: [6]uint64{0, 0x123<<32 | tiocsti}, want: Errno(eperm)},
		{name: "name_to_handle_at", want: Allow},
		{nr: 1000, want: Errno(enosys)},
		{nr: x32SyscallBit | 39, want: KillProcess},
	}
	for _, c := range cases {
		for _, arch := range []string{"amd64", "arm64"} {
			if c.nr >= x32SyscallBit && arch == "arm64" {
				continue
			}
			c.arch = arch
			if got := evalCall(t, progs, c); got != c.want {
				t.Errorf("permissive %s %s %s: got %v, want %v", arch, c.name, c.comment, got, c.want)
			}
		}
	}
}

// Every known number on each arch gets the same answer from the BPF
// program and from Decide, for all presets, in both modes.
func TestCompileAgreesWithDecideEverywhere(t *testing.T) {
	argSets := [][6]uint64{{}, {afInet, tiocsti}, {0xffffffff, 0x123<<32 | tioclinux, 0}, {38, 1}, {forkFlags | cloneNewUser}}
	for _, name := range []string{"default", "strict", "permissive"} {
		for _, notify := range []bool{false, true} {
			f, _ := Preset(name)
			if notify {
				f = f.WithNotify()
			}
			progs := compileAll(t, f)
			for _, arch := range Arches() {
				a, _ := getArch(arch)
				for nr := 0; nr <= a.maxNr+2; nr++ {
					for _, args := range argSets {
						d := seccompData{nr: uint32(nr), arch: a.auditArch, args: args}
						r, err := runBPF(progs[arch], &d)
						if err != nil {
							t.Fatal(err)
						}
						if want := f.Decide(arch, nr, args).Ret(); r != want {
							t.Fatalf("%s notify=%v %s nr %d (%s) %x: BPF %#x, Decide %#x", name, notify, arch, nr, SyscallName(arch, nr), args, r, want)
						}
					}
				}
			}
		}
	}
}

func TestWithNotifyAndDenyErrno(t *testing.T) {
	f, _ := Preset("default")
	n := f.WithNotify()
	progs := compileAll(t, n)
	for _, c := range []struct {
		name  string
		args  [6]uint64
		errno int
		ret   Action
	}{
		{"keyctl", [6]uint64{}, eperm, Notify},
		{"io_uring_setup", [6]uint64{}, enosys, Notify},
		{"read", [6]uint64{}, 0, Allow},
		{"socket", [6]uint64{38}, eperm, Notify},
		{"socket", [6]uint64{afInet}, 0, Allow},
	} {
		nr := mustNr(t, "amd64", c.name)
		got := evalCall(t, progs, call{arch: "amd64", name: c.name, args: c.args})
		if got.kind != c.ret.kind {
			t.Errorf("%s: compiled notify filter gives %v, want %v", c.name, got, c.ret)
		}
		e, name := n.DenyErrno("amd64", int(nr), c.args)
		if e != c.errno || name != c.name {
			t.Errorf("DenyErrno(%s) = %d %q, want %d", c.name, e, name, c.errno)
		}
	}
	if e, name := n.DenyErrno("amd64", 1000, [6]uint64{}); e != enosys || name != "syscall_1000" {
		t.Errorf("DenyErrno(1000) = %d %q", e, name)
	}
	// The original filter is unchanged.
	if a := f.Decide("amd64", int(mustNr(t, "amd64", "keyctl")), [6]uint64{}); a != Errno(eperm) {
		t.Errorf("WithNotify changed the original: %v", a)
	}
	// Strict kills stay kills.
	s, _ := Preset("strict")
	if a := s.WithNotify().Decide("amd64", int(mustNr(t, "amd64", "ptrace")), [6]uint64{}); a != KillProcess {
		t.Errorf("strict+notify ptrace = %v, want kill", a)
	}
}

func TestAdjust(t *testing.T) {
	f, _ := Preset("default")
	if err := f.Adjust([]string{"ptrace"}, []string{"socket", "getpid"}); err != nil {
		t.Fatal(err)
	}
	progs := compileAll(t, f)
	for _, c := range []call{
		{arch: "amd64", name: "ptrace", want: Allow},
		{arch: "amd64", name: "getpid", want: Errno(eperm)},
		{arch: "amd64", name: "socket", args: [6]uint64{afInet}, want: Errno(eperm)},
	} {
		if got := evalCall(t, progs, c); got != c.want {
			t.Errorf("%s after Adjust: %v, want %v", c.name, got, c.want)
		}
	}
	err := f.Adjust([]string{"read", "no_such_call"}, []string{"bogus2"})
	if err == nil || !strings.Contains(err.Error(), "no_such_call") || !strings.Contains(err.Error(), "bogus2") {
		t.Fatalf("Adjust with unknown names: %v", err)
	}
	s, _ := Preset("strict")
	_ = s.Adjust(nil, []string{"getpid"})
	if a := s.Decide("amd64", int(mustNr(t, "amd64", "getpid")), [6]uint64{}); a != KillProcess {
		t.Errorf("strict deny = %v, want kill", a)
	}
	if _, err := Preset("nope"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestPresetNamesKnown(t *testing.T) {
	for _, list := range []string{defaultAllow, surfaceDeny, enosysDeny, strictAllow} {
		for _, n := range words(list) {
			if !knownName(n) {
				t.Errorf("preset names unknown syscall %q", n)
			}
		}
	}
	for _, n := range []string{"clone3", "openat2", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
		"landlock_create_ruleset", "memfd_secret", "cachestat", "map_shadow_stack", "listmount",
		"statmount", "mseal", "lsm_get_self_attr", "futex_waitv", "fchmodat2"} {
		if _, ok := SyscallNumber("amd64", n); !ok {
			t.Errorf("amd64 table lacks %s", n)
		}
		if _, ok := SyscallNumber("arm64", n); !ok && n != "map_shadow_stack" {
			t.Errorf("arm64 table lacks %s", n)
		}
	}
	if SyscallName("amd64", 435) != "clone3" || SyscallName("arm64", 56) != "openat" || SyscallName("amd64", 1000) != "" {
		t.Error("SyscallName table lookups wrong")
	}
}

func TestCompileRejects(t *testing.T) {
	f, _ := Preset("default")
	if _, err := f.Compile("386"); err == nil {
		t.Error("386 accepted")
	}
	g := f.Clone()
	g.Rules["nonesuch"] = allow()
	if _, err := g.Compile("amd64"); err == nil {
		t.Error("unknown name compiled")
	}
	g = f.Clone()
	g.Rules["read"] = []Rule{{Args: []Arg{{Index: 6, Mask: 1}}, Action: Allow}}
	if _, err := g.Compile("amd64"); err == nil {
		t.Error("arg index 6 compiled")
	}
	g = f.Clone()
	g.Rules["read"] = []Rule{{Action: Errno(0)}}
	if _, err := g.Compile("amd64"); err == nil {
		t.Error("errno 0 compiled")
	}
}

func BenchmarkCompileDefault(b *testing.B) {
	f, _ := Preset("default")
	for b.Loop() {
		if _, err := f.Compile("amd64"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBuildCached(t *testing.T) {
	get1, p1, err := Build("default", []string{"ptrace"}, []string{"getpid"}, true, nil, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	get2, p2, _ := Build("default", []string{"ptrace"}, []string{"getpid"}, true, nil, "amd64")
	f1, _ := get1()
	f2, _ := get2()
	if f1 != f2 || &p1[0] != &p2[0] {
		t.Error("second Build did not hit the cache")
	}
	ref, _ := Preset("default")
	ref.Adjust([]string{"ptrace"}, []string{"getpid"})
	want, _ := ref.WithNotify().Compile("amd64")
	if !slices.Equal(want, p1) {
		t.Fatalf("cached program differs from a fresh compile")
	}
	if _, _, err := Build("default", []string{"nope"}, nil, false, nil, "amd64"); err == nil {
		t.Error("unknown name accepted by Build")
	}
	_, p3, _ := Build("default", []string{"ptrace"}, []string{"getpid"}, false, nil, "amd64")
	if &p3[0] == &p1[0] {
		t.Error("notify and errno programs share a cache entry")
	}
	// Without adjustments: the precompiled program, and the Filter it was
	// compiled from, built on demand.
	get, p, err := Build("default", nil, nil, true, []string{"clone3"}, "arm64")
	if err != nil || &p[0] != &precompiledFor("default|notify|clone3|arm64")[0] {
		t.Fatalf("unadjusted default did not use the precompiled program (%v)", err)
	}
	f, err := get()
	if err != nil {
		t.Fatal(err)
	}
	if fresh, _ := f.Compile("arm64"); !slices.Equal(fresh, p) {
		t.Error("the Filter built on demand does not compile to the precompiled program")
	}
	if _, _, err := Build("nope", nil, nil, true, nil, "amd64"); err == nil {
		t.Error("unknown preset accepted by Build")
	}
}

func BenchmarkBuildUncached(b *testing.B) {
	for b.Loop() {
		f, _ := Preset("default")
		f.Adjust([]string{"ptrace"}, nil)
		if _, err := f.WithNotify().Compile("amd64"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildCached(b *testing.B) {
	for b.Loop() {
		if _, _, err := Build("default", []string{"ptrace"}, nil, true, nil, "amd64"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWithNotifyExcept(t *testing.T) {
	f, _ := Preset("default")
	n := f.WithNotifyExcept("clone3", "tuxcall")
	progs := compileAll(t, n)
	if got := evalCall(t, progs, call{arch: "amd64", name: "clone3"}); got != Errno(enosys) {
		t.Errorf("quiet clone3 = %v, want errno(38)", got)
	}
	if got := evalCall(t, progs, call{arch: "amd64", name: "tuxcall"}); got != Errno(eperm) {
		t.Errorf("quiet tuxcall (no rule, default) = %v, want errno(1)", got)
	}
	if got := evalCall(t, progs, call{arch: "amd64", name: "keyctl"}); got.kind != kindNotify {
		t.Errorf("keyctl = %v, want notify", got)
	}
}
