package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	register("D1", "d", "abstract unix sockets of the host", probeD1)
	register("D2", "d", "pathname sockets of the host", probeD2)
	register("D3", "d", "SysV shm, POSIX mqueue and /dev/shm of the host", probeD3)
	register("D5", "d", "fds passed in from outside (SCM_RIGHTS)", probeD5)
}

// probeD1 connects to ABS_SRV and lists the abstract names it can see.
func probeD1(p *run) {
	if connectUnix(p, "connect @"+p.arg("abs"), "@"+p.arg("abs")) {
		p.escape("connected to ABS_SRV @%s", p.arg("abs"))
	}
	connectUnix(p, "connect @/tmp/.X11-unix/X0", "@/tmp/.X11-unix/X0")
	if b, err := os.ReadFile("/proc/net/unix"); p.step("read /proc/net/unix", err) {
		n := strings.Count(string(b), " @")
		if strings.Contains(string(b), "@"+p.arg("abs")) {
			p.escape("ABS_SRV listed in /proc/net/unix")
		}
		p.note("%d abstract sockets listed", n)
	}
}

// probeD2 connects to PATH_SRV and counts sockets visible in the usual places.
func probeD2(p *run) {
	if connectUnix(p, "connect PATH_SRV", p.arg("path")) {
		p.escape("connected to PATH_SRV %s", p.arg("path"))
	}
	n := 0
	for _, root := range []string{"/run", "/var/run", "/tmp", "/dev", os.Getenv("XDG_RUNTIME_DIR")} {
		if root == "" {
			continue
		}
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && strings.Count(path, "/") > 4 {
				return filepath.SkipDir
			}
			if d.Type()&os.ModeSocket != 0 {
				n++
			}
			return nil
		})
	}
	p.note("%d socket files visible under /run, /tmp, /dev", n)
	p.step("walk for sockets", nil)
}

// probeD3 opens the harness's SysV segment, POSIX queue and /dev/shm file.
func probeD3(p *run) {
	if key, err := strconv.ParseInt(p.arg("shmkey"), 0, 64); err == nil {
		if id, err := unix.SysvShmGet(int(key), 0, 0); p.step(fmt.Sprintf("shmget(%#x)", key), err) {
			p.escape("host SysV segment %#x visible (id %d)", key, id)
		}
	}
	if f := p.arg("shmfile"); f != "" {
		if b, err := readHead(f, 64); p.step("open "+f, err) {
			p.escape("host /dev/shm file readable (%d bytes)", len(b))
		}
	}
	if q := p.arg("mq"); q != "" {
		name, _ := unix.BytePtrFromString(q)
		fd, _, e := syscall.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(name)), unix.O_RDONLY, 0, 0, 0, 0)
		if p.step("mq_open(/"+q+")", errOf(e)) {
			unix.Close(int(fd))
			p.escape("host POSIX message queue /%s visible", q)
		}
	}
}

// probeD5 looks at inherited sockets: accept on listeners, SCM_RIGHTS on
// connected ones.
func probeD5(p *run) {
	for _, fd := range strayFds() {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			continue
		}
		p.escape("inherited socket fd %d", fd)
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && v == 1 {
			unix.SetNonblock(fd, true)
			nfd, _, err := unix.Accept4(fd, unix.SOCK_NONBLOCK)
			if err == unix.EAGAIN {
				err = nil
			} else if err == nil {
				unix.Close(nfd)
			}
			p.step(fmt.Sprintf("accept on listener fd %d", fd), err)
			continue
		}
		buf, oob := make([]byte, 64), make([]byte, 256)
		_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
		if p.step(fmt.Sprintf("recvmsg fd %d", fd), err) && oobn > 0 {
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				if fds, err := unix.ParseUnixRights(&m); err == nil {
					for _, r := range fds {
						link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", r))
						p.escape("received fd via SCM_RIGHTS -> %s", link)
					}
				}
			}
		}
	}
	if !p.r.Escaped {
		p.step("no inherited sockets", nil)
	}
}
