package landlock

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Environment variables that turn the test binary into a helper process.
const (
	envChild  = "AIRLOCK_LANDLOCK_CHILD"   // JSON childConfig: the attacker
	envThread = "AIRLOCK_LANDLOCK_THREADS" // secret path: read it from many threads
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(envChild); cfg != "" {
		os.Exit(childMain(cfg))
	}
	if secret := os.Getenv(envThread); secret != "" {
		os.Exit(threadsMain(secret))
	}
	os.Exit(m.Run())
}

// childConfig tells the attacker what to restrict and what to attack.
type childConfig struct {
	Apply    bool // false: control run, no Landlock
	ABI      int  // plan for this ABI; 0: the kernel's
	Request  Request
	A, B     string // read-only and read-write dirs
	Root     string // parent of A and B, not granted
	Secret   string // not granted
	Single   string // a granted single file
	Binary   string // this test binary, run again after exec by the shell
	Victim   int
	Abstract string // abstract unix socket name, without the leading NUL
	TCPDeny  int    // port not allowed
	TCPAllow int    // port allowed
}

// childMain applies Landlock on its locked thread, attacks from that
// thread, then execs a shell that attacks again.
func childMain(raw string) int {
	var c childConfig
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		fmt.Println("SETUP bad config:", err)
		return 3
	}
	runtime.LockOSThread() // never unlocked: the thread carries the domain
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
		fmt.Println("SETUP no_new_privs:", e)
		return 3
	}
	if c.Apply {
		abi, err := ABI()
		if err != nil {
			fmt.Println("SETUP", err)
			return 3
		}
		if c.ABI > 0 {
			abi = c.ABI
		}
		rs, _, err := Plan(c.Request, abi)
		if err != nil {
			fmt.Println("SETUP", err)
			return 3
		}
		p, err := rs.Prepare()
		if err != nil {
			fmt.Println("SETUP", err)
			return 3
		}
		ops := p.Ops()
		if i, e := Run(ops); i >= 0 {
			fmt.Printf("SETUP %s: %v\n", ops[i].Stage, e)
			return 3
		}
		runtime.KeepAlive(p)
	}

	report := func(name string, err error) {
		if err == nil {
			fmt.Printf("attack %s: ok\n", name)
		} else {
			fmt.Printf("attack %s: %v\n", name, err)
		}
	}
	readFile := func(p string) (string, error) {
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		defer syscall.Close(fd)
		buf := make([]byte, 256)
		n, err := syscall.Read(fd, buf)
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	writeFile := func(p string, flags int, data string) error {
		fd, err := syscall.Open(p, flags|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		_, err = syscall.Write(fd, []byte(data))
		return err
	}

	// Positive controls: what the grants allow must work.
	_, err := readFile(filepath.Join(c.A, "readme"))
	report("read_a", err)
	_, err = readFile(c.Single)
	report("read_single", err)
	report("write_b", writeFile(filepath.Join(c.B, "new"), syscall.O_CREAT|syscall.O_EXCL, "new"))
	report("rename_within_b", syscall.Rename(filepath.Join(c.B, "sub1", "f"), filepath.Join(c.B, "sub2", "f")))

	// Attacks.
	report("write_a_canary", writeFile(filepath.Join(c.A, "canary"), 0, "PWNED"))
	report("create_outside", writeFile(filepath.Join(c.Root, "outside-new"), syscall.O_CREAT|syscall.O_EXCL, "x"))
	report("mkdir_outside", syscall.Mkdir(filepath.Join(c.Root, "outside-dir"), 0o755))
	secret, err := readFile(c.Secret)
	report("read_secret", err)
	if err == nil {
		fmt.Printf("secret-content: %s\n", secret)
	}
	report("rename_b_into_a", syscall.Rename(filepath.Join(c.B, "moveme"), filepath.Join(c.A, "moveme")))
	report("ioctl_dev", ioctlDev())
	report("link_a_into_b", syscall.Link(filepath.Join(c.A, "canary"), filepath.Join(c.B, "hardlink")))
	report("truncate_a", syscall.Truncate(filepath.Join(c.A, "canary"), 0))
	report("open_trunc_a", writeFileRO(filepath.Join(c.A, "canary")))
	if c.Victim > 0 {
		signalVictim(c.Victim, report)
	}
	if c.Abstract != "" {
		report("connect_abstract", connectOnce(syscall.AF_UNIX, &syscall.SockaddrUnix{Name: "@" + c.Abstract}))
	}
	if c.TCPDeny > 0 {
		report("connect_tcp_denied_port", connectOnce(syscall.AF_INET, &syscall.SockaddrInet4{Port: c.TCPDeny, Addr: [4]byte{127, 0, 0, 1}}))
	}
	if c.TCPAllow > 0 {
		report("connect_tcp_allowed_port", connectOnce(syscall.AF_INET, &syscall.SockaddrInet4{Port: c.TCPAllow, Addr: [4]byte{127, 0, 0, 1}}))
	}

	// The domain survives execve: a shell attacks again.
	script := fmt.Sprintf(`cat %q/readme && echo && echo shell-ran
echo PWNED > %q/canary2 && echo 'attack sh_write_a: ok'
cat %q && echo && echo 'attack sh_read_secret: ok'
%s=%q %q
echo > %q/sh-outside && echo 'attack sh_create_outside: ok'
exit 0`, c.A, c.A, c.Secret, envThread, c.Secret, c.Binary, c.Root)
	os.Stdout.Sync()
	err = syscall.Exec("/bin/sh", []string{"sh", "-c", script}, []string{"PATH=/usr/bin:/bin"})
	fmt.Println("SETUP exec /bin/sh:", err)
	return 3
}

// ioctlDev sends a terminal ioctl to /dev/null, which has no ioctl
// handler: ENOTTY means the call reached the driver (Landlock let it
// through), EACCES means Landlock denied it.
func ioctlDev() error {
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	_, err = unix.IoctlGetTermios(fd, unix.TCGETS)
	if err == syscall.ENOTTY {
		return nil
	}
	if err == nil {
		return fmt.Errorf("/dev/null answered TCGETS")
	}
	return err
}

// threadsMain runs after the shell's execve: it reads the secret from
// several OS threads, since after exec every thread inherits the domain.
func threadsMain(secret string) int {
	const n = 4
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			runtime.LockOSThread() // a distinct thread each; exits with it
			fd, err := syscall.Open(secret, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err == nil {
				syscall.Close(fd)
			}
			errs <- err
		}()
	}
	var first error
	opened := 0
	for i := 0; i < n; i++ {
		if err := <-errs; err == nil {
			opened++
		} else if first == nil {
			first = err
		}
	}
	if opened > 0 {
		fmt.Printf("attack thread_read_secret: ok\n")
	} else {
		fmt.Printf("attack thread_read_secret: %v\n", first)
	}
	return 0
}

// writeFileRO opens for reading with O_TRUNC, which truncates.
func writeFileRO(p string) error {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_TRUNC|syscall.O_CLOEXEC, 0)
	if err == nil {
		syscall.Close(fd)
	}
	return err
}

// connectOnce connects a blocking socket on this thread and closes it.
func connectOnce(family int, sa syscall.Sockaddr) error {
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return syscall.Connect(fd, sa)
}

// signalVictim tries every route to signal another process (THREATS.md
// C1), each with its own signal so the victim tells them apart.
func signalVictim(pid int, report func(string, error)) {
	report("kill_victim", syscall.Kill(pid, syscall.SIGUSR1))
	report("tgkill_victim", unix.Tgkill(pid, pid, syscall.SIGHUP))
	var info [128]byte // siginfo: signo, errno, code (SI_QUEUE = -1)
	binary.NativeEndian.PutUint32(info[0:], uint32(syscall.SIGALRM))
	binary.NativeEndian.PutUint32(info[8:], ^uint32(0))
	_, _, e := syscall.RawSyscall(unix.SYS_RT_SIGQUEUEINFO, uintptr(pid), uintptr(syscall.SIGALRM), uintptr(unsafe.Pointer(&info[0])))
	report("sigqueue_victim", errnoErr(e))
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		err = unix.PidfdSendSignal(pidfd, syscall.SIGWINCH, nil, 0)
		syscall.Close(pidfd)
	}
	report("pidfd_victim", err)
	// SIGIO route: the owner of an O_ASYNC pipe gets F_SETSIG's signal when
	// data arrives. No call fails under Landlock; the signal is dropped.
	var p [2]int
	err = syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK)
	if err == nil {
		if _, err = unix.FcntlInt(uintptr(p[0]), unix.F_SETOWN, pid); err == nil {
			if _, err = unix.FcntlInt(uintptr(p[0]), unix.F_SETSIG, int(unix.SIGPWR)); err == nil {
				if _, err = unix.FcntlInt(uintptr(p[0]), unix.F_SETFL, unix.O_ASYNC|unix.O_NONBLOCK); err == nil {
					_, err = syscall.Write(p[1], []byte("x"))
				}
			}
		}
		syscall.Close(p[0])
		syscall.Close(p[1])
	}
	if err != nil {
		report("sigio_setup", err)
	}
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// victimScript traps one signal per route and prints what it got when the
// parent sends SIGUSR2. A single-threaded shell is used on purpose: all
// signals pending when SIGUSR2 arrives are handled on the same return to
// user space, before wait returns, so none is missed.
const victimScript = `got=""; done=""
trap 'got="$got USR1"' USR1
trap 'got="$got HUP"' HUP
trap 'got="$got ALRM"' ALRM
trap 'got="$got WINCH"' WINCH
trap 'got="$got PWR"' PWR
trap 'done=1' USR2
echo ready
while [ -z "$done" ]; do sleep 1000 >/dev/null & pid=$!; wait $pid; kill $pid 2>/dev/null; done
echo "got:$got"
`

// allVictimSignals is what the victim prints when every route worked.
const allVictimSignals = "ALRM HUP PWR USR1 WINCH"

// server counts connections that arrive before the parent's marker
// connection, which writes "M". Accept is in order, so when the marker is
// accepted every earlier connection has been counted.
type server struct {
	ln       net.Listener
	mu       sync.Mutex
	intruder int
	done     chan struct{}
}

func serve(t *testing.T, network, addr string) *server {
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, done: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b := make([]byte, 1)
			n, _ := c.Read(b)
			c.Close()
			if n == 1 && b[0] == 'M' {
				return
			}
			s.mu.Lock()
			s.intruder++
			s.mu.Unlock()
		}
	}()
	return s
}

// connections sends the marker and returns how many connections came first.
func (s *server) connections(t *testing.T) int {
	c, err := net.Dial(s.ln.Addr().Network(), s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("M"))
	c.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.intruder
}

func requireABI(t *testing.T, min int) int {
	abi, err := ABI()
	if err != nil {
		t.Skipf("Landlock is not available on this host: %v", err)
	}
	if abi < min {
		t.Skipf("host Landlock ABI %d < %d", abi, min)
	}
	return abi
}

// outcome is what the parent saw from outside after one attacker run.
type outcome struct {
	results  map[string]string // attack name -> "ok" or the error
	output   string
	canary   string
	canary2  string
	nlink    uint64
	exists   map[string]bool
	victim   string
	abstract int
	tcpDeny  int
	tcpAllow int
}

const canaryText = "original canary"

func runAttacker(t *testing.T, apply bool, abi int) outcome {
	root := t.TempDir()
	// The test user must be able to enter the tree in both runs.
	os.Chmod(root, 0o755)
	a, b := filepath.Join(root, "A"), filepath.Join(root, "B")
	secretText := fmt.Sprintf("SECRET-%d", os.Getpid())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{a, b, filepath.Join(b, "sub1"), filepath.Join(b, "sub2")} {
		must(os.Mkdir(d, 0o755))
	}
	must(os.WriteFile(filepath.Join(a, "readme"), []byte("readme text"), 0o644))
	must(os.WriteFile(filepath.Join(a, "canary"), []byte(canaryText), 0o644))
	must(os.WriteFile(filepath.Join(a, "canary2"), []byte(canaryText), 0o644))
	must(os.WriteFile(filepath.Join(b, "moveme"), []byte("moveme"), 0o644))
	must(os.WriteFile(filepath.Join(b, "sub1", "f"), []byte("f"), 0o644))
	must(os.WriteFile(filepath.Join(root, "secret"), []byte(secretText), 0o644))
	must(os.WriteFile(filepath.Join(root, "single"), []byte("single"), 0o644))

	// Victim outside the domain.
	victim := exec.Command("/bin/sh", "-c", victimScript)
	victim.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	vpipe, err := victim.StdoutPipe()
	must(err)
	must(victim.Start())
	t.Cleanup(func() { syscall.Kill(-victim.Process.Pid, syscall.SIGKILL); victim.Wait() })
	vout := bufio.NewReader(vpipe)
	if line, _ := vout.ReadString('\n'); line != "ready\n" {
		t.Fatalf("victim not ready: %q", line)
	}

	abstractName := fmt.Sprintf("airlock-landlock-test-%d-%v-%d", os.Getpid(), apply, abi)
	abs := serve(t, "unix", "@"+abstractName)
	deny := serve(t, "tcp", "127.0.0.1:0")
	allow := serve(t, "tcp", "127.0.0.1:0")
	denyPort := deny.ln.Addr().(*net.TCPAddr).Port
	allowPort := allow.ln.Addr().(*net.TCPAddr).Port

	exe, err := os.Executable()
	must(err)
	cfg := childConfig{
		Apply: apply, ABI: abi,
		Request: Request{
			ReadOnly: []string{"/usr", "/bin", "/lib", "/lib64", "/nonexistent-airlock-landlock", "/dev/null",
				a, filepath.Join(root, "single"), filepath.Dir(exe)},
			ReadWrite:         []string{b},
			RestrictNet:       true,
			ConnectTCP:        []uint16{uint16(allowPort)},
			ScopeSignals:      true,
			ScopeAbstractUnix: true,
		},
		A: a, B: b, Root: root, Secret: filepath.Join(root, "secret"), Single: filepath.Join(root, "single"),
		Binary: exe,
		Victim: victim.Process.Pid, Abstract: abstractName, TCPDeny: denyPort, TCPAllow: allowPort,
	}
	raw, err := json.Marshal(cfg)
	must(err)
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), envChild+"="+string(raw))
	out, err := child.CombinedOutput()
	t.Logf("attacker output (apply=%v):\n%s", apply, out)
	if err != nil {
		t.Fatalf("attacker: %v", err)
	}
	if !bytes.Contains(out, []byte("shell-ran")) {
		t.Fatalf("exec'd shell did not run")
	}

	// Everything below is observed from outside the domain.
	var o outcome
	o.output = string(out)
	o.results = map[string]string{}
	for _, line := range strings.Split(o.output, "\n") {
		if name, res, ok := strings.Cut(strings.TrimPrefix(line, "attack "), ": "); ok && strings.HasPrefix(line, "attack ") {
			o.results[name] = res
		}
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	o.canary, o.canary2 = read(filepath.Join(a, "canary")), read(filepath.Join(a, "canary2"))
	var st syscall.Stat_t
	must(syscall.Stat(filepath.Join(a, "canary"), &st))
	o.nlink = uint64(st.Nlink)
	o.exists = map[string]bool{}
	for _, p := range []string{
		filepath.Join(root, "outside-new"), filepath.Join(root, "outside-dir"), filepath.Join(root, "sh-outside"),
		filepath.Join(a, "moveme"), filepath.Join(b, "moveme"), filepath.Join(b, "hardlink"),
		filepath.Join(b, "new"), filepath.Join(b, "sub2", "f"),
	} {
		_, err := os.Lstat(p)
		o.exists[strings.TrimPrefix(p, root+"/")] = err == nil
	}
	must(victim.Process.Signal(syscall.SIGUSR2))
	last, _ := io.ReadAll(vout)
	must(victim.Wait())
	got, ok := strings.CutPrefix(strings.TrimSpace(string(last)), "got:")
	if !ok {
		t.Fatalf("victim printed %q", last)
	}
	words := strings.Fields(got)
	slices.Sort(words)
	o.victim = strings.Join(words, " ")
	o.abstract, o.tcpDeny, o.tcpAllow = abs.connections(t), deny.connections(t), allow.connections(t)
	if strings.Contains(o.output, secretText) {
		o.output = strings.ReplaceAll(o.output, secretText, "<SECRET>")
	}
	return o
}

// TestLandlockAttacks runs the same attacker without Landlock, to show
// each attack would work and each oracle sees it, and then with rulesets
// planned for every ABI from 1 to the kernel's: the attacks that still work
// must be exactly those Plan reported as downgraded, and the grants must
// still work.
func TestLandlockAttacks(t *testing.T) {
	kernel := requireABI(t, 1)
	t.Logf("uid %d, kernel Landlock ABI %d", os.Getuid(), kernel)
	positive := []string{"read_a", "read_single", "write_b", "rename_within_b", "connect_tcp_allowed_port"}
	attacks := []string{"write_a_canary", "create_outside", "mkdir_outside", "read_secret",
		"rename_b_into_a", "link_a_into_b", "truncate_a", "open_trunc_a",
		"kill_victim", "tgkill_victim", "sigqueue_victim", "pidfd_victim",
		"connect_abstract", "connect_tcp_denied_port", "ioctl_dev",
		"sh_write_a", "sh_read_secret", "sh_create_outside", "thread_read_secret"}

	t.Run("control", func(t *testing.T) {
		o := runAttacker(t, false, 0)
		for _, name := range append(append([]string{}, positive...), attacks...) {
			if o.results[name] != "ok" {
				t.Errorf("control: %s = %q, want ok", name, o.results[name])
			}
		}
		if !strings.Contains(o.output, "<SECRET>") || o.victim != allVictimSignals || o.abstract != 1 || o.tcpDeny != 1 || o.tcpAllow != 1 {
			t.Errorf("control: oracles missed attacks: secret seen %v, victim %q, abstract %d, tcp %d/%d",
				strings.Contains(o.output, "<SECRET>"), o.victim, o.abstract, o.tcpDeny, o.tcpAllow)
		}
		if o.canary == canaryText || o.canary2 == canaryText || !o.exists["outside-new"] || !o.exists["A/moveme"] || !o.exists["B/hardlink"] {
			t.Errorf("control: file oracles missed attacks: canary %q canary2 %q exists %v", o.canary, o.canary2, o.exists)
		}
	})

	for abi := 1; abi <= min(kernel, MaxKnownABI); abi++ {
		t.Run(fmt.Sprintf("abi%d", abi), func(t *testing.T) {
			// What Plan says this ABI cannot restrict is what may work.
			_, dg, err := Plan(Request{RestrictNet: true, ScopeSignals: true, ScopeAbstractUnix: true}, abi)
			if err != nil {
				t.Fatal(err)
			}
			gap := map[string]bool{}
			for _, d := range dg {
				gap[d.Feature] = true
			}
			works := map[string]bool{
				"truncate_a": gap["truncate"], "open_trunc_a": gap["truncate"],
				"ioctl_dev":               gap["ioctl_dev"],
				"kill_victim":             gap["scope_signal"],
				"tgkill_victim":           gap["scope_signal"],
				"sigqueue_victim":         gap["scope_signal"],
				"pidfd_victim":            gap["scope_signal"],
				"connect_abstract":        gap["scope_abstract_unix"],
				"connect_tcp_denied_port": gap["tcp"],
				// ABI 1 denies every move across directories.
				"rename_within_b": !gap["refer"],
			}
			o := runAttacker(t, true, abi)
			for _, name := range positive {
				if ok, listed := works[name]; (o.results[name] == "ok") != (ok || !listed) {
					t.Errorf("grant %s = %q", name, o.results[name])
				}
			}
			for _, name := range attacks {
				r, ran := o.results[name]
				if (r == "ok") != works[name] || (!ran && !strings.HasPrefix(name, "sh_")) {
					t.Errorf("attack %s = %q, want it to work: %v", name, r, works[name])
				}
			}
			// Effects, seen from outside.
			wantCanary := canaryText
			if gap["truncate"] {
				wantCanary = ""
			}
			if o.canary != wantCanary || o.canary2 != canaryText {
				t.Errorf("canaries %q %q, want %q %q", o.canary, o.canary2, wantCanary, canaryText)
			}
			if o.nlink != 1 {
				t.Errorf("canary has %d links", o.nlink)
			}
			for name, want := range map[string]bool{
				"outside-new": false, "outside-dir": false, "sh-outside": false,
				"A/moveme": false, "B/moveme": true, "B/hardlink": false,
				"B/new": true, "B/sub2/f": !gap["refer"],
			} {
				if o.exists[name] != want {
					t.Errorf("%s exists=%v, want %v", name, o.exists[name], want)
				}
			}
			if strings.Contains(o.output, "<SECRET>") {
				t.Errorf("secret leaked to the attacker")
			}
			count := func(b bool) int {
				if b {
					return 1
				}
				return 0
			}
			want := ""
			if gap["scope_signal"] {
				want = allVictimSignals
			}
			if o.victim != want {
				t.Errorf("victim log %q, want %q", o.victim, want)
			}
			if o.abstract != count(gap["scope_abstract_unix"]) || o.tcpDeny != count(gap["tcp"]) || o.tcpAllow != 1 {
				t.Errorf("servers saw: abstract %d, denied tcp %d, allowed tcp %d", o.abstract, o.tcpDeny, o.tcpAllow)
			}
		})
	}
}
