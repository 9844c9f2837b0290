package probe

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

func init() {
	register("B1", "b", "procfs and sysfs information leaks", probeB1)
	register("B2", "b", "other processes visible through /proc", probeB2)
	register("B3", "b", "inherited environment secrets", probeB3)
	register("B4", "b", "kernel keyring keys of the host user", probeB4)
	register("B5", "b", "open_by_handle_at (shocker)", probeB5)
	register("B6", "b", "nested userns with a fresh procfs", probeB6)
	register("B7", "b", "setgroups drops deny groups", probeB7)
	register("B8", "b", "Landlock gaps, from a second thread", probeB8)
	helpers["proc-child"] = procChild
	helpers["setgroups-child"] = func([]string, map[string]string) int {
		if err := unix.Setgroups(nil); err != nil {
			fmt.Println("setgroups:", errnoName(err))
			return 1
		}
		fmt.Println("setgroups ok")
		return 0
	}
}

// leakPaths is the moby masked list plus the LinPEAS read list.
var leakPaths = []string{
	"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
	"/proc/timer_stats", "/proc/interrupts", "/proc/acpi", "/proc/asound", "/proc/scsi/scsi",
	"/proc/config.gz", "/proc/kmsg", "/proc/vmcoreinfo", "/proc/kallsyms", "/dev/kmem",
	"/dev/mem", "/sys/firmware/dmi/tables/DMI", "/sys/kernel/vmcoreinfo",
	"/sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj",
	"/sys/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count",
}

var nonzeroAddr = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^0*[1-9a-f][0-9a-f]* `) })

// probeB1 reads the head of each masked path and the kernel log.
func probeB1(p *run) {
	for _, path := range leakPaths {
		b, err := readHead(path, 4096)
		if !p.step("read "+path, err) || len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if path == "/proc/kallsyms" && !nonzeroAddr().Match(b) {
			continue // addresses hidden: no leak
		}
		p.escape("%s readable (%d bytes)", path, len(b))
	}
	buf := make([]byte, 4096)
	if n, err := unix.Klogctl(3, buf); p.step("syslog(READ_ALL)", err) && n > 0 {
		p.escape("kernel log readable (%d bytes)", n)
	}
}

// probeB2 looks for VICTIM (a host process) through /proc.
func probeB2(p *run) {
	v := p.arg("victim")
	if cmd, err := os.ReadFile("/proc/" + v + "/cmdline"); p.step("read /proc/VICTIM/cmdline", err) && bytes.Contains(cmd, []byte("victim")) {
		p.escape("VICTIM (host pid %s) is visible", v)
		if env, err := os.ReadFile("/proc/" + v + "/environ"); p.step("read /proc/VICTIM/environ", err) {
			p.escape("read VICTIM's environment (%d bytes)", len(env))
		}
	}
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	root, err := os.Readlink("/proc/1/root")
	p.step("readlink /proc/1/root", err)
	p.note("%d pids visible, /proc/1/root -> %q", n, root)
}

// probeB3 looks for the broker's canary variable in its environment.
func probeB3(p *run) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "SBX_CANARY_SECRET" {
			p.escape("SBX_CANARY_SECRET inherited from the broker")
		}
		for _, s := range []string{"SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "AWS_", "KUBERNETES_"} {
			if strings.HasPrefix(k, s) {
				p.note("inherited %s", k)
			}
		}
	}
	p.step("scan environment", nil)
}

// probeB4 reads the harness's keys by serial (plus a small range around
// them) with KEYCTL_READ.
func probeB4(p *run) {
	id, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	p.step("keyctl(GET_KEYRING_ID, session)", err)
	_ = id
	seen := map[int]bool{}
	var serials []int
	for _, s := range splitList(p.arg("keys")) {
		k, _ := strconv.Atoi(s)
		for d := -2; d <= 2; d++ {
			if k+d > 0 && !seen[k+d] {
				seen[k+d] = true
				serials = append(serials, k+d)
			}
		}
	}
	buf := make([]byte, 256)
	for _, k := range serials {
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, k, buf, 0)
		if p.step(fmt.Sprintf("keyctl(READ, %d)", k), err) && n > 0 {
			desc, _ := unix.KeyctlString(unix.KEYCTL_DESCRIBE, k)
			if strings.Contains(desc, "keyring") {
				continue
			}
			p.escape("read key %d (%s, %d bytes)", k, desc, n)
		}
	}
}

// probeB5 uses file handles, which bypass the mount namespace root.
func probeB5(p *run) {
	for _, dir := range []string{"/", "/usr", "/etc"} {
		h, mnt, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
		if !p.step("name_to_handle_at "+dir, err) {
			continue
		}
		mfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			continue
		}
		_ = mnt
		fd, err := unix.OpenByHandleAt(mfd, h, unix.O_RDONLY)
		if p.step("open_by_handle_at "+dir, err) {
			unix.Close(fd)
			p.escape("open_by_handle_at works (CAP_DAC_READ_SEARCH in the initial namespace)")
		}
		unix.Close(mfd)
	}
}

// probeB6 mounts a fresh procfs from nested user+mount+pid namespaces.
func probeB6(p *run) {
	out, _, err := child("proc-child", userns(syscall.CLONE_NEWNS|syscall.CLONE_NEWPID, false))
	p.step("clone(user|mnt|pid)+mount proc", err)
	if strings.Contains(out, "mounted") {
		p.escape("fresh procfs mounted in a nested namespace (%s)", out)
	} else if out != "" {
		p.note("%s", out)
	}
}

func procChild([]string, map[string]string) int {
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		fmt.Println("mount proc:", errnoName(err))
		return 1
	}
	var readable []string
	for _, f := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts"} {
		if b, err := readHead(f, 512); err == nil && len(b) > 0 {
			readable = append(readable, filepath.Base(f))
		}
	}
	fmt.Println("mounted; readable:", strings.Join(readable, ","))
	return 0
}

// probeB7 drops supplementary groups, directly and in a nested userns where
// setgroups was left allowed.
func probeB7(p *run) {
	if p.step("setgroups(0)", unix.Setgroups(nil)) {
		p.escape("setgroups works: deny groups can be dropped")
	}
	out, _, err := child("setgroups-child", userns(0, true))
	p.step("clone(user) with setgroups allowed", err)
	if strings.Contains(out, "setgroups ok") {
		p.escape("setgroups works in a nested userns")
	}
}

// probeB8 repeats reads, writes, connects and a signal from a second OS
// thread, and adds the protocols Landlock does not cover (UDP, MPTCP).
func probeB8(p *run) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		lockThread()
		if b, err := readHead(filepath.Join(p.arg("canary"), "secret"), 64); p.step("thread: read secret", err) && len(b) > 0 {
			p.escape("second thread read the canary secret")
		}
		touch := filepath.Join(p.arg("ro"), "touch")
		if p.step("thread: open O_WRONLY ro/touch", openWrite(touch)) {
			p.escape("second thread opened ro/touch for writing")
		}
		if p.step("thread: truncate ro/touch", unix.Truncate(touch, 0)) {
			p.escape("second thread truncated ro/touch")
		}
		src := filepath.Join(p.arg("rw"), "b8-move")
		if f, err := os.Create(src); err == nil {
			f.Close()
			if p.step("thread: rename rw -> ro", unix.Rename(src, filepath.Join(p.arg("ro"), "b8-move"))) {
				p.escape("second thread renamed a file into the read-only dir")
			}
			os.Remove(src)
		}
		if connectUnix(p, "thread: connect ABS_SRV", "@"+p.arg("abs")) {
			p.escape("second thread reached ABS_SRV")
		}
		if connectUnix(p, "thread: connect PATH_SRV", p.arg("path")) {
			p.escape("second thread reached PATH_SRV")
		}
		if port, _ := strconv.Atoi(p.arg("tcp")); port > 0 {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 262) // IPPROTO_MPTCP
			if p.step("thread: socket(MPTCP)", err) {
				if p.step("thread: connect MPTCP TCP_SRV", unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})) {
					p.escape("MPTCP reached TCP_SRV")
				}
				unix.Close(fd)
			}
		}
		if port, _ := strconv.Atoi(p.arg("udp")); port > 0 {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if p.step("thread: socket(UDP)", err) {
				p.step("thread: sendto UDP_SRV", unix.Sendto(fd, []byte("airlock-b8"), 0, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}))
				unix.Close(fd)
			}
		}
		if v, _ := strconv.Atoi(p.arg("victim")); v > 0 {
			if p.step("thread: kill(VICTIM, SIGUSR1)", unix.Kill(v, unix.SIGUSR1)) {
				p.escape("second thread signalled VICTIM")
			}
		}
	}()
	<-done
}

// connectUnix connects to a unix socket ("@name" is abstract).
func connectUnix(p *run, step, name string) bool {
	if name == "" || name == "@" {
		return false
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		p.step(step, err)
		return false
	}
	defer unix.Close(fd)
	return p.step(step, unix.Connect(fd, &unix.SockaddrUnix{Name: name}))
}
