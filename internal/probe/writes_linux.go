package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	register("A1", "a", "mount propagation back to the host", probeA1)
	register("A2", "a", "old root reachable (chroot escape, put_old)", probeA2)
	register("A3", "a", "inherited fds or cwd pointing at the host", probeA3)
	register("A4", "a", "overwrite the airlock binary via /proc/PID/exe", probeA4)
	register("A7", "a", "writes to global kernel knobs", probeA7)
	register("A8", "a", "cgroup release_agent and writable cgroupfs", probeA8)
	register("A9", "a", "persistence through dotfiles and hooks", probeA9)
	register("A10", "a", "AF_ALG page-cache attack surface", probeA10)
	register("A11", "a", "io_uring beside seccomp", probeA11)
	register("A12", "a", "hardlinks to host files", probeA12)
	helpers["mount-child"] = mountChild
}

// probeA1 mounts a tmpfs over a bound host dir: directly, then from a nested
// user+mount namespace, and looks for shared propagation.
func probeA1(p *run) {
	target := p.arg("mnt")
	if p.step("mount tmpfs on "+target, unix.Mount("airlock-a1", target, "tmpfs", 0, "size=4k")) {
		p.escape("mounted tmpfs on %s in this mount namespace", target)
	}
	out, _, err := child("mount-child", userns(syscall.CLONE_NEWNS, false), target)
	p.step("unshare(user|mnt)+mount", err)
	if strings.Contains(out, "mounted") {
		p.note("nested mount ns could mount (%s)", out)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); p.step("read mountinfo", err) {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, " shared:") {
				p.escape("mount with shared propagation: %s", l)
				break
			}
		}
	}
}

func mountChild(rest []string, _ map[string]string) int {
	if len(rest) == 0 {
		return 2
	}
	if err := unix.Mount("airlock-a1", rest[0], "tmpfs", 0, "size=4k"); err != nil {
		fmt.Println("mount:", errnoName(err))
		return 1
	}
	fmt.Println("mounted")
	return 0
}

// probeA2 tries every route to the unbound canary secret: its path, old-root
// names, and the classic chroot-then-".." escape.
func probeA2(p *run) {
	secret := filepath.Join(p.arg("canary"), "secret")
	try := func(how, path string) {
		if b, err := readHead(path, 64); p.step(how, err) && len(b) > 0 {
			p.escape("read canary secret via %s", how)
		}
	}
	try("open secret by host path", secret)
	for _, old := range []string{"/.old_root", "/oldroot", "/.pivot_root", "/old", "/mnt/old"} {
		if _, err := os.Stat(old); p.step("stat "+old, err) {
			try("secret under "+old, filepath.Join(old, secret))
		}
	}
	var before unix.Stat_t
	unix.Stat("/", &before)
	dir, err := os.MkdirTemp(p.arg("scratch"), "a2-")
	if !p.step("mkdir chroot dir", err) {
		return
	}
	defer os.Remove(dir)
	cwd, _ := unix.Open(".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if !p.step("chroot(dir)", unix.Chroot(dir)) {
		return
	}
	unix.Fchdir(cwd)
	for i := 0; i < 64; i++ {
		unix.Chdir("..")
	}
	p.step("chroot(.) after ..x64", unix.Chroot("."))
	var after unix.Stat_t
	unix.Stat("/", &after)
	if after.Ino != before.Ino || after.Dev != before.Dev {
		p.escape("chroot escape left the box root (/ inode %d -> %d)", before.Ino, after.Ino)
	}
	try("open secret after chroot escape", secret)
}

// probeA3 lists fds beyond stdio it did not open itself and follows them.
func probeA3(p *run) {
	fds := strayFds()
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		p.escape("inherited fd %d -> %s", fd, link)
		if n, err := unix.Openat(fd, "secret", unix.O_RDONLY, 0); p.step(fmt.Sprintf("openat(%d, secret)", fd), err) {
			unix.Close(n)
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			p.step(fmt.Sprintf("fchdir(%d)", fd), unix.Fchdir(fd))
		}
	}
	if cwd, err := os.Getwd(); p.step("getcwd", err) && strings.HasPrefix(cwd, "(unreachable)") {
		p.escape("cwd is outside the box root: %s", cwd)
	}
	if len(fds) == 0 {
		p.note("only fds 0-2 present")
	}
	// Stay alive a moment so the host can list our fds from outside.
	if ms, _ := strconv.Atoi(p.arg("hold")); ms > 0 && ms <= 5000 {
		emit(&p.r)
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
}

// strayFds lists open fds above 2; called first thing, before the probe
// opens anything itself.
func strayFds() []int {
	var fds []int
	for fd := 3; fd < 1024; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds
}

// probeA4 opens every visible /proc/PID/exe and the airlock binary for
// writing (directly and by reopening an O_PATH fd).
func probeA4(p *run) {
	targets := map[string]string{}
	if b := p.arg("bin"); b != "" {
		targets["binary "+b] = b
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			targets["/proc/"+e.Name()+"/exe"] = "/proc/" + e.Name() + "/exe"
		}
	}
	for name, path := range targets {
		if p.step("open O_WRONLY "+name, openWrite(path)) {
			p.escape("opened %s for writing", name)
			continue
		}
		fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		err = openWrite(fmt.Sprintf("/proc/self/fd/%d", fd))
		if p.step("reopen O_PATH fd O_WRONLY "+name, err) {
			p.escape("reopened %s for writing", name)
		} else if err == unix.ETXTBSY && unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS) == nil {
			p.escape("%s is writable once no longer running (only ETXTBSY stopped the open)", name)
		}
		unix.Close(fd)
	}
}

var kernelKnobs = []string{
	"/proc/sys/kernel/core_pattern", "/proc/sys/vm/panic_on_oom", "/proc/sys/fs/suid_dumpable",
	"/proc/sys/kernel/sysrq", "/proc/sys/kernel/hostname", "/proc/sysrq-trigger",
	"/proc/sys/fs/binfmt_misc/register", "/sys/kernel/uevent_helper", "/sys/kernel/profiling",
	"/proc/sys/kernel/modprobe", "/proc/sys/user/max_user_namespaces",
}

// probeA7 opens each global kernel knob for writing (never writes).
func probeA7(p *run) {
	for _, k := range kernelKnobs {
		if p.step("open O_WRONLY "+k, openWrite(k)) {
			p.escape("%s is writable", k)
		}
	}
}

// probeA8 opens cgroup control files for writing and tries the
// CVE-2022-0492 cgroup v1 mount from a nested namespace.
func probeA8(p *run) {
	files, _ := filepath.Glob("/sys/fs/cgroup/*/cgroup.procs")
	files = append(files, "/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/unified/cgroup.procs")
	ra, _ := filepath.Glob("/sys/fs/cgroup/*/release_agent")
	files = append(files, ra...)
	if own, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(own)), "\n") {
			parts := strings.SplitN(l, ":", 3)
			if len(parts) == 3 && parts[1] == "memory" {
				files = append(files, "/sys/fs/cgroup/memory"+parts[2]+"/memory.limit_in_bytes")
			}
		}
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if p.step("open O_WRONLY "+f, openWrite(f)) {
			p.escape("%s is writable", f)
		}
	}
	out, _, err := child("cgroup-child", userns(syscall.CLONE_NEWNS|syscall.CLONE_NEWCGROUP, false))
	p.step("unshare(user|mnt|cgroup)+mount cgroup rdma", err)
	if strings.Contains(out, "mounted") {
		p.escape("mounted cgroup v1 in a nested namespace: %s", out)
	}
}

func init() {
	helpers["cgroup-child"] = func([]string, map[string]string) int {
		d, err := os.MkdirTemp("", "a8-")
		if err != nil {
			d = "/tmp"
		}
		defer os.Remove(d)
		if err := unix.Mount("cgroup", d, "cgroup", 0, "rdma"); err != nil {
			fmt.Println("mount:", errnoName(err))
			return 1
		}
		defer unix.Unmount(d, unix.MNT_DETACH)
		ok := openWrite(filepath.Join(d, "release_agent")) == nil
		fmt.Println("mounted, release_agent writable:", ok)
		return 0
	}
}

// probeA9 tries to plant files that the host user's tools would run later.
func probeA9(p *run) {
	ro := p.arg("ro")
	for _, f := range []string{".bashrc", ".profile", ".vscode/tasks.json"} {
		if p.step("open O_WRONLY "+f, openWrite(filepath.Join(ro, f))) {
			p.escape("%s is writable", f)
		}
	}
	for _, f := range []string{".git/hooks/post-checkout", ".config/airlock/policy.toml"} {
		fd, err := unix.Open(filepath.Join(ro, f), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o755)
		if p.step("create "+f, err) {
			unix.Close(fd)
			p.escape("created %s", f)
		}
	}
}

// probeA10 opens an AF_ALG socket (the "Copy Fail" route) and binds an AEAD.
func probeA10(p *run) {
	fd, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET, 0)
	if !p.step("socket(AF_ALG)", err) {
		return
	}
	defer unix.Close(fd)
	p.escape("AF_ALG socket created")
	p.step("bind aead gcm(aes)", unix.Bind(fd, &unix.SockaddrALG{Type: "aead", Name: "gcm(aes)"}))
}

// probeA11 sets up an io_uring, whose operations seccomp cannot see.
func probeA11(p *run) {
	var params [120]byte
	fd, _, e := syscall.RawSyscall(unix.SYS_IO_URING_SETUP, 8, uintptrOf(&params[0]), 0)
	if p.step("io_uring_setup", errOf(e)) {
		unix.Close(int(fd))
		p.escape("io_uring is available")
	}
}

// probeA12 hardlinks host files into the writable bind.
func probeA12(p *run) {
	rw := p.arg("rw")
	for i, src := range []string{filepath.Join(p.arg("ro"), "touch"), filepath.Join(p.arg("canary"), "secret"), "/usr/bin/passwd"} {
		dst := filepath.Join(rw, fmt.Sprintf("a12-link%d", i))
		if p.step("link "+src, unix.Link(src, dst)) {
			p.escape("hardlinked %s into the writable dir", src)
		}
	}
}
