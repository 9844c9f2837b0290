package selftest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fixtures are the host objects the probes attack and the oracles watch.
type fixtures struct {
	root, canary, ro, rw, scratch, xdg string
	token                              string
	secret                             []byte
	binary                             string
	binSum                             [32]byte

	servers   map[string]*server // abs, path, x11, wayland, pulse, tcp4, tcp6, udp, dns
	tcpPort   int
	udpPort   int
	dnsPort   int
	absName   string
	x11Name   string
	pathSock  string
	victim    *exec.Cmd
	victimLog string
	keys      []int
	shmKey    int
	shmID     int
	shmFile   string
	mqName    string
	suid      []string // setuid/file-cap binaries (root only)
	plainBin  string   // a copy runnable by nobody (root only)
	rootFile  string   // 0600 root-owned (root only)

	// Fds the broker "inherited" without close-on-exec (A3, D5).
	leakFiles []*os.File
	closers   []io.Closer

	ptyMaster, ptySlave *os.File
}

type server struct {
	accepts atomic.Int64
	close   func()
}

func randToken() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func setupFixtures(binary string) (fx *fixtures, err error) {
	fx = &fixtures{token: randToken(), servers: map[string]*server{}, binary: binary}
	defer func() {
		if err != nil {
			fx.cleanup()
		}
	}()
	if fx.root, err = os.MkdirTemp("", "airlock-selftest-"); err != nil {
		return nil, err
	}
	os.Chmod(fx.root, 0o755)
	fx.canary, fx.ro, fx.rw = filepath.Join(fx.root, "canary"), filepath.Join(fx.root, "ro"), filepath.Join(fx.root, "rw")
	fx.scratch, fx.xdg = filepath.Join(fx.root, "scratch"), filepath.Join(fx.root, "xdg")
	for _, d := range []string{fx.canary, fx.ro, fx.xdg, filepath.Join(fx.xdg, "pulse"), filepath.Join(fx.root, "sock"),
		filepath.Join(fx.ro, "mnt"), filepath.Join(fx.ro, ".git/hooks"), filepath.Join(fx.ro, ".vscode"), filepath.Join(fx.ro, ".config/airlock")} {
		if err = os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{fx.rw, fx.scratch} {
		if err = os.Mkdir(d, 0o777); err != nil {
			return nil, err
		}
		os.Chmod(d, 0o777) // the sandbox user (nobody, under a root broker) writes here
	}
	fx.secret = []byte("airlock-canary-secret-" + fx.token + "\n")
	files := map[string][]byte{
		filepath.Join(fx.canary, "secret"): fx.secret, filepath.Join(fx.canary, "touch"): nil,
		filepath.Join(fx.ro, "touch"): nil, filepath.Join(fx.ro, ".bashrc"): []byte("# canary\n"),
		filepath.Join(fx.ro, ".profile"): []byte("# canary\n"), filepath.Join(fx.ro, ".vscode/tasks.json"): []byte("{}\n"),
	}
	for p, b := range files {
		if err = os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		os.Chmod(p, 0o644)
	}
	// Run a copy in the fixture dir: the original may sit in a directory the
	// sandbox user cannot reach (a root broker maps it to nobody), and the
	// copy is owned, like the original, by the invoking user.
	if fx.binary, err = copyBinary(binary, filepath.Join(fx.root, "bin")); err != nil {
		return nil, fmt.Errorf("copy %s: %w", binary, err)
	}
	if fx.binSum, err = fileSum(fx.binary); err != nil {
		return nil, fmt.Errorf("hash %s: %w", fx.binary, err)
	}
	if err = fx.startServers(); err != nil {
		return nil, err
	}
	if err = fx.startVictim(); err != nil {
		return nil, fmt.Errorf("victim: %w", err)
	}
	fx.addKeys()
	fx.makeIPC()
	if err = fx.makeLeaks(); err != nil {
		return nil, fmt.Errorf("inherited fds: %w", err)
	}
	if err = fx.openPty(); err != nil {
		return nil, fmt.Errorf("pty: %w", err)
	}
	if os.Geteuid() == 0 {
		if err = fx.makeRootFixtures(); err != nil {
			return nil, fmt.Errorf("setuid fixtures: %w", err)
		}
	}
	return fx, nil
}

func copyBinary(src, dir string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	os.Chmod(dir, 0o755)
	dst := filepath.Join(dir, "airlock")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		return "", err
	}
	return dst, os.Chmod(dst, 0o755)
}

func fileSum(path string) ([32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// counting accepts every connection (and counts it) until closed.
func (fx *fixtures) listenUnix(key, name string) error {
	l, err := net.Listen("unix", name)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(name, "@") {
		os.Chmod(name, 0o777)
	}
	fx.serve(key, l)
	return nil
}

func (fx *fixtures) serve(key string, l net.Listener) {
	s := &server{close: func() { l.Close() }}
	fx.servers[key] = s
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			c.Close()
		}
	}()
}

func (fx *fixtures) startServers() error {
	fx.absName = "sbx-canary-" + fx.token
	if err := fx.listenUnix("abs", "@"+fx.absName); err != nil {
		return err
	}
	fx.pathSock = filepath.Join(fx.root, "sock", "sbx-canary.sock")
	if err := fx.listenUnix("path", fx.pathSock); err != nil {
		return err
	}
	n, _ := strconv.ParseUint(fx.token[:4], 16, 32)
	fx.x11Name = fmt.Sprintf("/tmp/.X11-unix/X%d", 1000+n%9000)
	if err := fx.listenUnix("x11", "@"+fx.x11Name); err != nil {
		return err
	}
	if err := fx.listenUnix("wayland", filepath.Join(fx.xdg, "wayland-0")); err != nil {
		return err
	}
	if err := fx.listenUnix("pulse", filepath.Join(fx.xdg, "pulse/native")); err != nil {
		return err
	}
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fx.tcpPort = l4.Addr().(*net.TCPAddr).Port
	fx.serve("tcp4", l4)
	if l6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", fx.tcpPort)); err == nil {
		fx.serve("tcp6", l6)
	}
	for _, k := range []string{"udp", "dns"} {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s := &server{close: func() { pc.Close() }}
		fx.servers[k] = s
		if k == "udp" {
			fx.udpPort = pc.LocalAddr().(*net.UDPAddr).Port
		} else {
			fx.dnsPort = pc.LocalAddr().(*net.UDPAddr).Port
		}
		dns := k == "dns"
		go func() {
			buf := make([]byte, 512)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				s.accepts.Add(1)
				if dns && n > 12 {
					// Answer "no such name" so the prober sees a resolver.
					r := append([]byte{}, buf[:n]...)
					r[2], r[3] = 0x81, 0x83
					pc.WriteTo(r, from)
				}
			}
		}()
	}
	return nil
}

func (fx *fixtures) startVictim() error {
	fx.victimLog = filepath.Join(fx.root, "victim.log")
	c := exec.Command(fx.binary, "__probe", "victim", fx.victimLog)
	c.Env = []string{"SBX_VICTIM_SECRET=" + fx.token}
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := c.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	fx.victim = c
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("victim did not start: %q %v", line, err)
	}
	return nil
}

// addKeys puts a "user" key, readable by its owner, in the session and the
// user keyrings.
func (fx *fixtures) addKeys() {
	for _, ring := range []int{unix.KEY_SPEC_SESSION_KEYRING, unix.KEY_SPEC_USER_KEYRING} {
		id, err := unix.AddKey("user", "sbx-canary-"+fx.token, fx.secret, ring)
		if err != nil {
			continue
		}
		unix.KeyctlSetperm(id, 0x3f3f0000) // possessor and owner: all
		fx.keys = append(fx.keys, id)
	}
}

func (fx *fixtures) makeIPC() {
	n, _ := strconv.ParseUint(fx.token[:4], 16, 32)
	fx.shmKey = 0x5B0C0000 | int(n)
	if id, err := unix.SysvShmGet(fx.shmKey, 4096, unix.IPC_CREAT|unix.IPC_EXCL|0o666); err == nil {
		fx.shmID = id
	} else {
		fx.shmKey = 0
	}
	fx.shmFile = "/dev/shm/sbx-canary-" + fx.token
	if err := os.WriteFile(fx.shmFile, fx.secret, 0o666); err != nil {
		fx.shmFile = ""
	}
	fx.mqName = "sbx-canary-" + fx.token
	name, _ := unix.BytePtrFromString(fx.mqName)
	fd, _, e := syscall.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(name)), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o666, 0, 0, 0)
	if e != 0 {
		fx.mqName = ""
	} else {
		unix.Close(int(fd))
	}
}

// makeLeaks opens the fds a careless broker would pass on: the canary
// secret, a listening TCP socket, and a unix socket with a directory fd
// queued as SCM_RIGHTS.
func (fx *fixtures) makeLeaks() error {
	sec, err := os.Open(filepath.Join(fx.canary, "secret"))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		sec.Close()
		return err
	}
	lf, err := l.(*net.TCPListener).File()
	l.Close()
	if err != nil {
		sec.Close()
		return err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir, err := unix.Open(fx.canary, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Sendmsg(pair[1], []byte("x"), unix.UnixRights(dir), nil, 0)
		unix.Close(dir)
	}
	fx.leakFiles = []*os.File{sec, lf, os.NewFile(uintptr(pair[0]), "leak-unix")}
	fx.closers = append(fx.closers, os.NewFile(uintptr(pair[1]), "leak-unix-peer"))
	return nil
}

// setLeakInheritable clears (or restores) close-on-exec on the leak fds, as
// if the broker had inherited them from its own parent.
func (fx *fixtures) setLeakInheritable(on bool) {
	for _, f := range fx.leakFiles {
		flags := 0
		if !on {
			flags = unix.FD_CLOEXEC
		}
		unix.FcntlInt(f.Fd(), unix.F_SETFD, flags)
	}
}

func (fx *fixtures) openPty() error {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return err
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return err
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return err
	}
	// Raw mode: no echo, no line buffering, so injected bytes are readable
	// at once and output arrives unchanged.
	if t, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err == nil {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 0, 0
		unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, t)
	}
	fx.ptyMaster, fx.ptySlave = m, s
	return nil
}

// makeRootFixtures places a setuid-root copy and a cap_setuid+ep copy of
// the probe binary, a plain copy nobody can run, and a 0600 root file in the
// read-only bound dir.
func (fx *fixtures) makeRootFixtures() error {
	src, err := os.ReadFile(fx.binary)
	if err != nil {
		return err
	}
	plain, suid, fcap := filepath.Join(fx.ro, "probe-plain"), filepath.Join(fx.ro, "probe-suid"), filepath.Join(fx.ro, "probe-fcap")
	for _, p := range []string{plain, suid, fcap} {
		if err := os.WriteFile(p, src, 0o755); err != nil {
			return err
		}
		os.Chown(p, 0, 0)
	}
	if err := unix.Chmod(suid, 0o4755); err != nil {
		return err
	}
	// struct vfs_cap_data, revision 2, effective: permitted = CAP_SETUID.
	var vc [20]byte
	binary.LittleEndian.PutUint32(vc[0:], 0x02000000|1)
	binary.LittleEndian.PutUint32(vc[4:], 1<<unix.CAP_SETUID)
	if err := unix.Setxattr(fcap, "security.capability", vc[:], 0); err != nil {
		return fmt.Errorf("file capability: %w", err)
	}
	fx.suid, fx.plainBin = []string{suid, fcap}, plain
	fx.rootFile = filepath.Join(fx.ro, "root-only")
	return os.WriteFile(fx.rootFile, fx.secret, 0o600)
}

func (fx *fixtures) cleanup() {
	if fx.victim != nil && fx.victim.Process != nil {
		fx.victim.Process.Kill()
		fx.victim.Wait()
	}
	for _, s := range fx.servers {
		s.close()
	}
	for _, k := range fx.keys {
		unix.KeyctlInt(unix.KEYCTL_REVOKE, k, 0, 0, 0)
		unix.KeyctlInt(unix.KEYCTL_UNLINK, k, unix.KEY_SPEC_SESSION_KEYRING, 0, 0)
		unix.KeyctlInt(unix.KEYCTL_UNLINK, k, unix.KEY_SPEC_USER_KEYRING, 0, 0)
	}
	if fx.shmKey != 0 {
		unix.SysvShmCtl(fx.shmID, unix.IPC_RMID, nil)
	}
	if fx.shmFile != "" {
		os.Remove(fx.shmFile)
	}
	if fx.mqName != "" {
		name, _ := unix.BytePtrFromString(fx.mqName)
		syscall.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(name)), 0, 0)
	}
	for _, f := range fx.leakFiles {
		f.Close()
	}
	for _, c := range fx.closers {
		c.Close()
	}
	if fx.ptyMaster != nil {
		fx.ptyMaster.Close()
		fx.ptySlave.Close()
	}
	if fx.root != "" {
		fx.unmountAll()
		os.RemoveAll(fx.root)
	}
}

// mountsUnder lists mount points below the fixture root.
func (fx *fixtures) mountsUnder() []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], fx.root+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

func (fx *fixtures) unmountAll() {
	for i := 0; i < 8; i++ {
		m := fx.mountsUnder()
		if len(m) == 0 {
			return
		}
		for j := len(m) - 1; j >= 0; j-- {
			unix.Unmount(m[j], unix.MNT_DETACH)
		}
	}
}

// killToken kills host processes whose command line carries the token.
func (fx *fixtures) tokenProcs(kill bool) []int {
	var found []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(b, []byte("token="+fx.token)) {
			found = append(found, pid)
			if kill {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	return found
}

var errNoReport = errors.New("no report")

var _ sync.Mutex
