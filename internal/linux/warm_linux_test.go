package linux

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock/internal/cgroup"
)

func testSpec() *Spec {
	s := &Spec{Hostname: "warm", Warm: true, Dir: "/"}
	for _, d := range []string{"/usr", "/bin", "/lib", "/lib64", "/sbin"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			t, _ := os.Readlink(d)
			s.Mounts = append(s.Mounts, Mount{Kind: Symlink, Source: t, Dest: d})
		default:
			s.Mounts = append(s.Mounts, Mount{Kind: Bind, Source: d, Dest: d})
		}
	}
	s.Mounts = append(s.Mounts, Mount{Kind: Tmpfs, Dest: "/tmp", Writable: true, Size: 1 << 20})
	return s
}

// startShell starts a shell script in spec with X=x in its environment;
// it returns the process, the write end of its stdin and the read end of
// its output.
func startShell(t *testing.T, spec *Spec, script, x string) (*Process, *os.File, *os.File) {
	t.Helper()
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	sp := *spec
	sp.Path, sp.Args = "/bin/sh", []string{"sh", "-c", script}
	sp.Env = []string{"PATH=/usr/bin:/bin", "X=" + x}
	sp.Stdio = [3]int{int(inR.Fd()), int(outW.Fd()), int(outW.Fd())}
	p, err := Start(&sp, Hooks{})
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	return p, inW, outR
}

// runOnce runs a shell script with stdin and returns its output.
func runOnce(t *testing.T, spec *Spec, script, stdin string) string {
	t.Helper()
	p, inW, outR := startShell(t, spec, script, stdin)
	go func() { io.WriteString(inW, stdin); inW.Close() }()
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(outR); done <- b }()
	ex, err := p.Wait()
	if err != nil || !ex.Reported || ex.Status.ExitStatus() != 0 {
		t.Fatalf("wait: %v %v", err, ex.Status)
	}
	select {
	case b := <-done:
		outR.Close()
		return string(b)
	case <-time.After(5 * time.Second):
		t.Fatal("output not closed 5s after the run: a sandbox still holds the pipe")
	}
	return ""
}

func idle(spec *Spec) bool {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return pool.idle[shapeOf(spec).key] != nil
}

// A shape used repeatedly gets a warm sandbox; each run gets exactly its own
// command, environment, directory and stdio, never a previous run's.
func TestWarmRuns(t *testing.T) {
	spec := testSpec()
	spec.Hostname = fmt.Sprintf("warm-%d", os.Getpid())
	for i := 0; i < 6; i++ {
		want := strings.Repeat("y", 40-5*i) + fmt.Sprint(i)
		sp := *spec
		sp.Dir = []string{"/", "/tmp", "/usr"}[i%3]
		if i >= 2 {
			for j := 0; j < 1000 && !idle(spec); j++ { // up to 5 s: slow under -race on 2 cores
				time.Sleep(5 * time.Millisecond)
			}
			if !idle(spec) {
				t.Fatalf("run %d: no warm sandbox prepared", i)
			}
		}
		out := runOnce(t, &sp, `read l; echo "$l $X $(pwd) $(hostname) $#"; ls /proc | grep -c '^[0-9]'`, want)
		expect := fmt.Sprintf("%s %s %s %s 0\n", want, want, sp.Dir, spec.Hostname)
		if !strings.HasPrefix(out, expect) {
			t.Fatalf("run %d: got %q, want prefix %q", i, out, expect)
		}
	}
}

// Runs overlapping in time do not hold each other's pipes, and fds the
// broker opened after a warm sandbox was made never reach it.
func TestWarmConcurrentAndFds(t *testing.T) {
	spec := testSpec()
	spec.Hostname = fmt.Sprintf("conc-%d", os.Getpid())
	runOnce(t, spec, "true", "")
	runOnce(t, spec, "true", "")
	fd, err := unix.Open("/etc/hostname", unix.O_RDONLY, 0) // no O_CLOEXEC on purpose
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var wg sync.WaitGroup
	outs := make([]string, 4)
	for i := range outs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i] = runOnce(t, spec, "ls /proc/self/fd | tr '\\n' ' '", fmt.Sprint(i))
		}(i)
	}
	wg.Wait()
	for _, o := range outs {
		if strings.TrimSpace(o) != "0 1 2 3" {
			t.Errorf("fds inside: %q, want only stdio (and ls's own)", o)
		}
	}
}

// Stdio fds numbered just above the launcher's own pipes are moved
// correctly (dup3 of an fd onto itself fails with EINVAL).
func TestStdioAboveLauncherFds(t *testing.T) {
	spec := testSpec()
	spec.Warm = false
	spec.Path, spec.Args = "/bin/sh", []string{"sh", "-c", "echo ok"}
	spec.Env = []string{"PATH=/bin:/usr/bin"}
	for shift := 4; shift <= 9; shift++ {
		// The plan's pipes take the lowest free fds; put stdio right
		// above where they will end.
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		low := min(fds[0], fds[1])
		var stdio [3]int
		for i := range stdio {
			fd, err := unix.FcntlInt(uintptr(fds[1]), unix.F_DUPFD_CLOEXEC, low+shift+i)
			if err != nil {
				t.Fatal(err)
			}
			stdio[i] = fd
		}
		unix.Close(fds[0])
		unix.Close(fds[1])
		sp := *spec
		sp.Stdio = stdio
		p, err := Start(&sp, Hooks{})
		for _, fd := range stdio {
			unix.Close(fd)
		}
		if err != nil {
			t.Fatalf("stdio at %v: %v", stdio, err)
		}
		p.Wait()
	}
}

// The target runs inside the run's cgroup on the cold path and on the warm
// one (where the target moves itself in when the run arrives), seen from
// outside in the group's own process list; fds used to join do not leak in.
func TestCgroupJoined(t *testing.T) {
	if info := cgroup.Detect(); !info.CanCreate {
		t.Skipf("cannot create cgroups here: %s", info.Reason)
	}
	spec := testSpec()
	spec.Hostname = fmt.Sprintf("cg-%d", os.Getpid())
	spec.Cgroup = &cgroup.Spec{Pids: 16, Minimal: true}
	for i := 0; i < 4; i++ {
		if i >= 2 {
			for j := 0; j < 1000 && !idle(spec); j++ { // up to 5 s: slow under -race on 2 cores
				time.Sleep(5 * time.Millisecond)
			}
		}
		warm := idle(spec)
		p, inW, outR := startShell(t, spec, `ls /proc/self/fd | tr '\n' ' '; echo; read x; exit 0`, "")
		line, _ := bufio.NewReader(outR).ReadString('\n')
		if strings.TrimSpace(line) != "0 1 2 3" {
			t.Errorf("run %d (warm %v): fds inside %q, want only stdio (and ls's own)", i, warm, line)
		}
		var members []string
		for _, d := range p.Cgroup.Dirs() {
			b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err != nil {
				t.Fatal(err)
			}
			members = append(members, strings.Join(strings.Fields(string(b)), ","))
		}
		inW.Close()
		ex, err := p.Wait()
		outR.Close()
		if err != nil || ex.Status.ExitStatus() != 0 {
			t.Fatalf("run %d: %v %v", i, err, ex.Status)
		}
		for j, m := range members {
			if m == "" {
				t.Errorf("run %d (warm %v): nothing in %s while the target ran", i, warm, p.Cgroup.Dirs()[j])
			}
		}
		if i >= 2 && !warm {
			t.Errorf("run %d: no warm sandbox was prepared", i)
		}
	}
}

// A warm sandbox serves only its exact shape: any difference in a mount,
// including one byte of a file's contents, is another shape; the command,
// environment, directory and limits are not part of it.
func TestShapeExact(t *testing.T) {
	base := testSpec()
	base.Mounts = append(base.Mounts, Mount{Kind: File, Dest: "/etc/hosts", Data: []byte("127.0.0.1 localhost\n")})
	same := *base
	same.Path, same.Args, same.Env, same.Dir = "/bin/echo", []string{"echo", "x"}, []string{"A=1"}, "/tmp"
	same.Rlimits = []Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 10, Max: 10}}
	if !shapeOf(base).same(shapeOf(&same)) || shapeOf(base).key != shapeOf(&same).key {
		t.Error("runs differing only in command, environment, directory and limits must share a shape")
	}
	for name, change := range map[string]func(s *Spec){
		"file contents": func(s *Spec) { s.Mounts[len(s.Mounts)-1].Data = []byte("127.0.0.1 localhosT\n") },
		"writable":      func(s *Spec) { s.Mounts[0].Writable = !s.Mounts[0].Writable },
		"dest":          func(s *Spec) { s.Mounts[0].Dest += "x" },
		"hostname":      func(s *Spec) { s.Hostname += "x" },
		"network":       func(s *Spec) { s.ShareNet = true },
	} {
		other := *base
		other.Mounts = append([]Mount(nil), base.Mounts...)
		change(&other)
		if shapeOf(base).same(shapeOf(&other)) {
			t.Errorf("%s changed, shape still the same", name)
		}
	}
	// The pool keeps its own copy of file contents: a caller reusing the
	// buffer does not change what a warm sandbox is taken for.
	kept := shapeOf(base).retained()
	base.Mounts[len(base.Mounts)-1].Data[0] = 'X'
	if kept.same(shapeOf(base)) {
		t.Error("retained shape follows the caller's buffer")
	}
}

// A used warm sandbox's memory (plan, run block) is freed: nothing keeps it
// until its TTL. Each one holds over 256 KiB, so 40 runs kept alive would
// add over 10 MiB of live heap.
func TestWarmMemoryFreed(t *testing.T) {
	spec := testSpec()
	spec.Hostname = fmt.Sprintf("mem-%d", os.Getpid())
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	runOnce(t, spec, "true", "")
	before := live()
	for i := 0; i < 40; i++ {
		for j := 0; j < 1000 && !idle(spec); j++ { // up to 5 s: slow under -race on 2 cores
			time.Sleep(time.Millisecond)
		}
		runOnce(t, spec, "true", "")
	}
	if grew := int64(live()) - int64(before); grew > 4<<20 {
		t.Errorf("live heap grew by %d KiB over 40 warm runs: used sandboxes are kept", grew>>10)
	}
}

// A caller that changes a file's contents in place between runs gets the
// new contents, never a warm sandbox built with the old ones.
func TestWarmFollowsFileContents(t *testing.T) {
	spec := testSpec()
	spec.Hostname = fmt.Sprintf("data-%d", os.Getpid())
	data := []byte("first\n")
	spec.Mounts = append(spec.Mounts, Mount{Kind: File, Dest: "/etc/airlock-data", Data: data})
	for i, want := range []string{"first", "first", "first", "secnd", "secnd", "first", "secnd"} {
		copy(data, want)
		for j := 0; j < 50 && i >= 2 && !idle(spec); j++ {
			time.Sleep(5 * time.Millisecond)
		}
		if out := strings.TrimSpace(runOnce(t, spec, "cat /etc/airlock-data", "")); out != want {
			t.Fatalf("run %d: the sandbox has %q, the policy %q", i, out, want)
		}
	}
}
