package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	register("H1", "h", "setuid and file-capability binaries", probeH1)
	register("H2", "h", "capability sets", probeH2)
	register("H3", "h", "nested namespaces (clone, clone3, unshare)", probeH3)
	register("H4", "h", "seccomp ABI bypass: i386 int 0x80, x32", probeH4)
	register("H5", "h", "argument-filtering gaps: clone3, new mount API", probeH5)
	register("H6", "h", "filter scope: every thread, unknown syscalls", probeH6)
	register("H7", "h", "high-risk kernel interfaces", probeH7)
	register("H9", "h", "too-broad namespaces and mounts (posture)", probeH9)
	helpers["whoami"] = func([]string, map[string]string) int {
		fmt.Printf("euid=%d cap=%s\n", os.Geteuid(), statusField("self", "CapEff"))
		return 0
	}
}

func statusField(pid, key string) string {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// probeH1 executes the harness's setuid-root and file-capability binaries
// (copies of the airlock binary that print their euid and CapEff).
func probeH1(p *run) {
	if nnp := statusField("self", "NoNewPrivs"); nnp != "1" {
		p.note("NoNewPrivs=%s", nnp)
	}
	euid := os.Geteuid()
	for _, b := range splitList(p.arg("suid")) {
		out, _, err := child2(b, "whoami")
		if !p.step("exec "+filepath.Base(b), err) {
			continue
		}
		var gotUID int
		var capEff string
		fmt.Sscanf(out, "euid=%d cap=%s", &gotUID, &capEff)
		if gotUID != euid {
			p.escape("%s raised euid %d -> %d", filepath.Base(b), euid, gotUID)
		}
		if capEff != "" && strings.Trim(capEff, "0") != "" && capEff != statusField("self", "CapEff") {
			p.escape("%s gained capabilities %s", filepath.Base(b), capEff)
		}
	}
}

// probeH2 reads its five capability sets.
func probeH2(p *run) {
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		v := statusField("self", k)
		if strings.Trim(v, "0") != "" {
			p.escape("%s=%s", k, v)
		}
	}
	p.step("read /proc/self/status", nil)
}

var nsFlags = []struct {
	name string
	flag uintptr
}{
	{"user", unix.CLONE_NEWUSER}, {"mnt", unix.CLONE_NEWNS}, {"net", unix.CLONE_NEWNET},
	{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"pid", unix.CLONE_NEWPID},
	{"cgroup", unix.CLONE_NEWCGROUP}, {"time", unix.CLONE_NEWTIME},
}

// probeH3 creates each namespace type through clone, clone3 and unshare.
func probeH3(p *run) {
	var made []string
	for _, ns := range nsFlags {
		if ns.flag != unix.CLONE_NEWTIME { // clone() cannot take NEWTIME
			pid, e := rawFork(ns.flag, false)
			if p.step("clone(NEW"+strings.ToUpper(ns.name)+")", errOf(e)) {
				reap(pid)
				made = append(made, "clone:"+ns.name)
			}
		}
		pid, e := rawClone3(uint64(ns.flag))
		if p.step("clone3(NEW"+strings.ToUpper(ns.name)+")", errOf(e)) {
			reap(pid)
			made = append(made, "clone3:"+ns.name)
		}
	}
	// unshare on a dedicated thread that is thrown away afterwards.
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with us
		for _, f := range []struct {
			name string
			flag int
		}{{"net", unix.CLONE_NEWNET}, {"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"time", unix.CLONE_NEWTIME}} {
			if p.step("unshare(NEW"+strings.ToUpper(f.name)+")", unix.Unshare(f.flag)) {
				made = append(made, "unshare:"+f.name)
			}
		}
	}()
	<-done
	if len(made) > 0 {
		p.escape("created namespaces: %s", strings.Join(made, " "))
	}
}

// probeH4 makes a system call through the i386 and x32 entry points, each
// in a child because a correct filter kills the caller with SIGSYS.
func probeH4(p *run) {
	for _, abi := range []string{"int80", "x32"} {
		out, st, err := child("abi-child", nil, abi)
		switch {
		case killedBySIGSYS(st):
			p.step(abi+" getpid", fmt.Errorf("killed by SIGSYS"))
		case err != nil:
			p.step(abi+" getpid", fmt.Errorf("%v %s", err, out))
		case strings.HasPrefix(out, "ok"):
			p.step(abi+" getpid", nil)
			p.escape("%s system call entry point reachable (%s)", abi, out)
		default:
			p.step(abi+" getpid", fmt.Errorf("%s", out))
		}
	}
}

func init() {
	helpers["abi-child"] = func(rest []string, _ map[string]string) int {
		if len(rest) == 0 {
			return 2
		}
		r, errno, ok := altABIGetpid(rest[0])
		switch {
		case !ok:
			fmt.Println("unsupported on", runtime.GOARCH)
		case errno != 0:
			fmt.Println(errnoName(errno))
		case r == os.Getpid():
			fmt.Println("ok pid", r)
		default:
			fmt.Println("returned", r)
		}
		return 0
	}
}

// probeH5 uses calls whose arguments seccomp cannot inspect.
func probeH5(p *run) {
	pid, e := rawClone3(unix.CLONE_NEWUSER)
	if p.step("clone3(NEWUSER)", errOf(e)) {
		reap(pid)
		p.escape("clone3 with namespace flags works")
	}
	if fd, err := unix.Fsopen("tmpfs", 0); p.step("fsopen(tmpfs)", err) {
		unix.Close(fd)
		p.escape("fsopen works")
	}
	if fd, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC); p.step("open_tree(/, CLONE)", err) {
		unix.Close(fd)
		p.escape("open_tree clone works")
	}
	secret := filepath.Join(p.arg("canary"), "secret")
	if fd, err := unix.Openat2(unix.AT_FDCWD, secret, &unix.OpenHow{Flags: unix.O_RDONLY}); p.step("openat2(secret)", err) {
		unix.Close(fd)
		p.escape("openat2 reached the canary secret")
	}
}

// probeH6 checks that every thread is filtered and that unknown and new
// system calls are refused.
func probeH6(p *run) {
	ready := make(chan struct{})
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready <- struct{}{}
			<-stop
		}()
	}
	for i := 0; i < 8; i++ {
		<-ready
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	bad := 0
	for _, t := range tasks {
		s := "self/task/" + t.Name()
		if statusField(s, "Seccomp") != "2" || statusField(s, "NoNewPrivs") != "1" {
			bad++
		}
	}
	close(stop)
	p.step(fmt.Sprintf("read status of %d threads", len(tasks)), nil)
	if bad > 0 {
		p.escape("%d of %d threads without seccomp filter mode 2 and NoNewPrivs 1", bad, len(tasks))
	}
	_, _, e := syscall.RawSyscall(1000, 0, 0, 0)
	p.step("syscall(1000)", errOf(e))
	if e == 0 {
		p.escape("unknown syscall 1000 returned success")
	}
	for _, nr := range []struct {
		name string
		nr   uintptr
	}{{"listmount", 458}, {"statmount", 457}, {"cachestat", 451}, {"map_shadow_stack", 453}} {
		_, _, e := syscall.RawSyscall6(nr.nr, 0, 0, 0, 0, 0, 0)
		p.step(nr.name+"(NULL)", errOf(e))
	}
}

// probeH7 calls each high-risk interface with harmless arguments.
func probeH7(p *run) {
	fd, _, e := syscall.RawSyscall(unix.SYS_USERFAULTFD, 1|unix.O_CLOEXEC, 0, 0) // UFFD_USER_MODE_ONLY
	if p.step("userfaultfd(USER_MODE_ONLY)", errOf(e)) {
		unix.Close(int(fd))
		p.escape("userfaultfd available")
	}
	insns := []uint64{0x00000000000000b7, 0x0000000000000095} // r0 = 0; exit
	license := []byte("GPL\x00")
	attr := make([]byte, 128)
	*(*uint32)(unsafe.Pointer(&attr[0])) = 1 // BPF_PROG_TYPE_SOCKET_FILTER
	*(*uint32)(unsafe.Pointer(&attr[4])) = uint32(len(insns))
	*(*uint64)(unsafe.Pointer(&attr[8])) = uint64(uintptr(unsafe.Pointer(&insns[0])))
	*(*uint64)(unsafe.Pointer(&attr[16])) = uint64(uintptr(unsafe.Pointer(&license[0])))
	fd, _, e = syscall.Syscall(unix.SYS_BPF, 5, uintptr(unsafe.Pointer(&attr[0])), 128) // BPF_PROG_LOAD
	if p.step("bpf(PROG_LOAD socket filter)", errOf(e)) {
		unix.Close(int(fd))
		p.escape("bpf program loading available")
	}
	pa := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK, Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{}))}
	pa.Bits = unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv
	if fd, err := unix.PerfEventOpen(&pa, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC); p.step("perf_event_open(SW_CPU_CLOCK)", err) {
		unix.Close(fd)
		p.escape("perf_event_open available")
	}
	old, _, e := syscall.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	r, _, e2 := syscall.RawSyscall(unix.SYS_PERSONALITY, 0x0400000, 0, 0) // READ_IMPLIES_EXEC
	if p.step("personality(READ_IMPLIES_EXEC)", errOf(e2)) && e == 0 && r == old {
		syscall.RawSyscall(unix.SYS_PERSONALITY, old, 0, 0)
		p.escape("personality(READ_IMPLIES_EXEC) allowed")
	}
	if fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0); p.step("open /dev/fuse", err) {
		unix.Close(fd)
		p.escape("/dev/fuse opened")
	}
}

// probeH9 compares its posture with the expected one: not host root, in its
// own user namespace, read-only /proc/sys and /sys, small /dev.
func probeH9(p *run) {
	m, err := os.ReadFile("/proc/self/uid_map")
	if p.step("read uid_map", err) {
		for _, l := range strings.Split(strings.TrimSpace(string(m)), "\n") {
			f := strings.Fields(l)
			if len(f) == 3 && f[1] == "0" {
				if f[2] == "4294967295" {
					p.escape("in the initial user namespace (uid_map %q)", l)
				} else {
					p.escape("host uid 0 mapped (%q)", l)
				}
			}
		}
	}
	for _, d := range []string{"/proc/sys", "/sys", "/sys/fs/cgroup"} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Flags&unix.ST_RDONLY == 0 && unix.Access(d, unix.W_OK) == nil {
			p.escape("%s is a writable mount", d)
		}
	}
	ents, _ := os.ReadDir("/dev")
	chr := 0
	for _, e := range ents {
		// Stat, not the dirent type: bind-mounted nodes sit on placeholder files.
		if fi, err := os.Stat("/dev/" + e.Name()); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			chr++
		}
	}
	if chr > 50 {
		p.escape("/dev has %d character devices (host /dev?)", chr)
	}
	if v := statusField("self", "CapEff"); strings.Trim(v, "0") != "" {
		p.escape("effective capabilities %s", v)
	}
	if f := p.arg("rootfile"); f != "" {
		if b, err := readHead(f, 64); p.step("read 0600 root-owned file", err) && len(b) > 0 {
			p.escape("read a 0600 file owned by host root")
		}
	}
}
