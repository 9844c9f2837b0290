package probe

import (
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

func init() {
	register("E1", "e", "TIOCSTI input injection into the terminal", probeE1)
	register("E2", "e", "TIOCLINUX on a virtual console", probeE2)
	register("E4", "e", "device nodes and mknod", probeE4)
	register("E5", "e", "desktop session sockets (X11, Wayland, Pulse)", probeE5)
	register("E6", "e", "iopl, ioperm, modify_ldt", probeE6)
}

// probeE1 pushes bytes into the input queue of its stdin terminal: plainly,
// with junk in the high 32 bits of the request (CVE-2019-10063), and after
// taking the terminal as its controlling tty.
func probeE1(p *run) {
	inject := func(tag string, c byte) bool {
		b := c
		_, _, e := syscall.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSTI, uintptrOf(&b))
		ok := p.step("ioctl(0, TIOCSTI, "+tag+")", errOf(e))
		req := uintptr(unix.TIOCSTI) | highBits
		_, _, e = syscall.Syscall(unix.SYS_IOCTL, 0, req, uintptrOf(&b))
		return p.step("ioctl(0, junk<<32|TIOCSTI, "+tag+")", errOf(e)) || ok
	}
	if inject("X", 'X') {
		p.escape("TIOCSTI injected input")
		return
	}
	// A session leader without a terminal (what setsid leaves behind) may
	// take any terminal that is nobody's controlling tty yet.
	p.step("setsid", unixSetsid())
	_, _, e := syscall.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSCTTY, 0)
	if p.step("ioctl(0, TIOCSCTTY)", errOf(e)) {
		p.note("took stdin as controlling terminal")
		if inject("Y", 'Y') {
			p.escape("TIOCSTI injected input after taking the terminal")
		}
	}
}

func unixSetsid() error {
	_, err := unix.Setsid()
	return err
}

// probeE2 calls TIOCLINUX (read-only subcode) on stdin and on any virtual
// console it can open.
func probeE2(p *run) {
	sub := [1]byte{6} // TIOCL_GETSHIFTSTATE: reads, changes nothing
	_, _, e := syscall.Syscall(unix.SYS_IOCTL, 0, unix.TIOCLINUX, uintptrOf(&sub[0]))
	if p.step("ioctl(0, TIOCLINUX)", errOf(e)) {
		p.escape("TIOCLINUX works on stdin")
	}
	for _, vt := range []string{"/dev/tty0", "/dev/tty1", "/dev/tty2", "/dev/console"} {
		fd, err := unix.Open(vt, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if !p.step("open "+vt, err) {
			continue
		}
		sub[0] = 6
		_, _, e := syscall.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCLINUX, uintptrOf(&sub[0]))
		if p.step("ioctl("+vt+", TIOCLINUX)", errOf(e)) {
			p.escape("TIOCLINUX reachable on %s", vt)
		}
		unix.Close(fd)
	}
}

var dangerousDevices = []string{
	"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/uinput", "/dev/input/event0",
	"/dev/input/mice", "/dev/video0", "/dev/snd/controlC0", "/dev/dri/card0", "/dev/kvm",
	"/dev/fuse", "/dev/net/tun", "/dev/vcs", "/dev/vcsa", "/dev/tty0", "/dev/tty1", "/dev/hidraw0",
	"/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0", "/dev/loop-control", "/dev/btrfs-control",
	"/dev/cpu/0/msr", "/dev/hwrng", "/dev/autofs", "/dev/console",
}

// probeE4 opens device nodes (without reading or writing them) and makes
// its own with mknod.
func probeE4(p *run) {
	for _, d := range dangerousDevices {
		fd, err := unix.Open(d, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if p.step("open "+d, err) {
			unix.Close(fd)
			p.escape("opened %s", d)
		}
	}
	dir := p.arg("scratch")
	for _, n := range []struct {
		name string
		mode uint32
		dev  int
	}{{"e4-mem", unix.S_IFCHR, int(unix.Mkdev(1, 1))}, {"e4-sda", unix.S_IFBLK, int(unix.Mkdev(8, 0))}} {
		path := filepath.Join(dir, n.name)
		if !p.step("mknod "+n.name, unix.Mknod(path, n.mode|0o600, n.dev)) {
			continue
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if p.step("open own "+n.name, err) {
			unix.Close(fd)
			p.escape("mknod %s and opened it", n.name)
		} else if err != unix.ENXIO && err != unix.ENODEV {
			p.note("mknod %s worked but open failed", n.name)
		}
		os.Remove(path)
	}
	ents, _ := os.ReadDir("/dev")
	chr := 0
	for _, e := range ents {
		// Stat, not the dirent type: bind-mounted nodes sit on placeholder files.
		if fi, err := os.Stat("/dev/" + e.Name()); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			chr++
		}
	}
	p.note("%d character devices in /dev", chr)
}

// probeE5 connects to the harness's fake X11 (abstract and pathname),
// Wayland and PulseAudio sockets, and the real default names.
func probeE5(p *run) {
	names := []string{"@" + p.arg("x11"), "@/tmp/.X11-unix/X0", "/tmp/.X11-unix/X0"}
	if rt := p.arg("xdg"); rt != "" {
		names = append(names, filepath.Join(rt, "wayland-0"), filepath.Join(rt, "pulse/native"))
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		names = append(names, filepath.Join(rt, "wayland-0"), filepath.Join(rt, "bus"))
	}
	for _, n := range names {
		if n == "@" {
			continue
		}
		if connectUnix(p, "connect "+n, n) {
			p.escape("connected to desktop socket %s", n)
		}
	}
	for _, e := range []string{"DISPLAY", "WAYLAND_DISPLAY", "PULSE_SERVER"} {
		if v := os.Getenv(e); v != "" {
			p.note("%s=%s inherited", e, v)
		}
	}
}
