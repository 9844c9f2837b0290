package selftest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/airlock-sandbox/airlock"
	"github.com/airlock-sandbox/airlock/internal/probe"
	"golang.org/x/sys/unix"
)

// sandboxProbePath is where the probe binary appears inside the sandbox.
const sandboxProbePath = "/.airlock/probe"

// oracles names the host-side checks that judge each probe; probes not
// listed are judged by their own report.
var oracles = map[string]string{
	"A1": "host mount table", "A3": "host view of the probe's fds", "A4": "binary sha256", "A7": "kernel knob values",
	"A9": "canary tree", "A12": "canary tree (link counts)", "B8": "canary tree, servers, VICTIM",
	"C1": "VICTIM signal log", "C5": "host process list", "C6": "VICTIM nice/affinity/limits",
	"D1": "ABS_SRV accepts", "D2": "PATH_SRV accepts", "E1": "pty input queue",
	"E5": "desktop socket accepts", "F1": "TCP_SRV accepts", "F4": "fake DNS server",
	"G6": "bytes received by the broker",
}

// limitsFor gives each resource probe the one tight limit it attacks, so
// the host is never at risk and the verdict names that limit.
func limitsFor(id string) airlock.Limits {
	l := airlock.Limits{WallTime: 60 * time.Second}
	switch id {
	case "G1":
		l.Procs = 64
	case "G2":
		l.Memory = 128 << 20
	case "G3":
		l.FileSize = 16 << 20
	case "G4":
		l.CPUTime = time.Second
	case "G5":
		l.OpenFiles = 64
	case "G6":
		l.Output = 1 << 20
	}
	return l
}

// Run sets up the fixtures, runs the selected probes one after another and
// judges each from the host side.
func Run(opts Options) (*Scorecard, error) {
	if opts.Binary == "" {
		return nil, errors.New("selftest: no probe binary given")
	}
	bin, err := filepath.Abs(opts.Binary)
	if err != nil {
		return nil, err
	}
	ids := probe.IDs()
	if len(opts.Only) > 0 {
		want := map[string]bool{}
		for _, id := range opts.Only {
			if _, ok := probe.Lookup(strings.ToUpper(id)); !ok {
				return nil, fmt.Errorf("selftest: unknown probe %q", id)
			}
			want[strings.ToUpper(id)] = true
		}
		var sel []string
		for _, id := range ids {
			if want[id] {
				sel = append(sel, id)
			}
		}
		ids = sel
	}
	fx, err := setupFixtures(bin)
	if err != nil {
		return nil, fmt.Errorf("selftest fixtures: %w", err)
	}
	defer fx.cleanup()
	// The environment canary: present in the broker, must not reach inside.
	old, had := os.LookupEnv("SBX_CANARY_SECRET")
	os.Setenv("SBX_CANARY_SECRET", fx.token)
	defer func() {
		if had {
			os.Setenv("SBX_CANARY_SECRET", old)
		} else {
			os.Unsetenv("SBX_CANARY_SECRET")
		}
	}()
	sc := &Scorecard{Sandboxed: opts.Sandboxed, UID: os.Getuid()}
	for _, id := range ids {
		r, err := fx.runOne(id, opts)
		if err != nil {
			return nil, err
		}
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, "%-4s %-15s %s\n", r.ID, r.Verdict, firstOf(r.Reason, r.Evidence))
		}
		sc.Results = append(sc.Results, r)
	}
	return sc, nil
}

// args builds the probe's key=value arguments.
func (fx *fixtures) args(id string, sandboxed bool) []string {
	scratch, bin := fx.scratch, fx.binary
	if sandboxed {
		scratch, bin = "/tmp", sandboxProbePath
	}
	var keys []string
	for _, k := range fx.keys {
		keys = append(keys, strconv.Itoa(k))
	}
	a := []string{
		"canary=" + fx.canary, "ro=" + fx.ro, "rw=" + fx.rw, "scratch=" + scratch, "bin=" + bin,
		"mnt=" + filepath.Join(fx.ro, "mnt"), "victim=" + strconv.Itoa(fx.victim.Process.Pid),
		"tcp=" + strconv.Itoa(fx.tcpPort), "udp=" + strconv.Itoa(fx.udpPort), "dns=" + strconv.Itoa(fx.dnsPort),
		"abs=" + fx.absName, "path=" + fx.pathSock, "x11=" + fx.x11Name, "xdg=" + fx.xdg,
		"keys=" + strings.Join(keys, ","), "token=" + fx.token, "cpu=2", "hold=400",
	}
	if fx.shmKey != 0 {
		a = append(a, fmt.Sprintf("shmkey=%#x", fx.shmKey))
	}
	if fx.shmFile != "" {
		a = append(a, "shmfile="+fx.shmFile)
	}
	if fx.mqName != "" {
		a = append(a, "mq="+fx.mqName)
	}
	if len(fx.suid) > 0 {
		a = append(a, "suid="+strings.Join(fx.suid, ","))
	}
	if fx.rootFile != "" {
		a = append(a, "rootfile="+fx.rootFile)
	}
	return a
}

// runOne runs one probe and judges it.
func (fx *fixtures) runOne(id string, opts Options) (Result, error) {
	sandboxed := opts.Sandboxed
	info, _ := probe.Lookup(id)
	res := Result{ID: id, Category: info.Category, Title: info.Title}
	if id == "H1" && len(fx.suid) == 0 {
		res.Verdict, res.Reason = NotApplicable, "needs root to place setuid-root and file-capability binaries"
		return res, nil
	}
	before := fx.snapshot()
	var effects []string
	var watch chan fdView
	var hostNote string
	if id == "A3" {
		watch = fx.watchFds(id)
	}
	out := &tailBuffer{max: 64 << 10}
	errb := &tailBuffer{max: 8 << 10}
	var sres *airlock.Result
	var runErr error
	if sandboxed {
		sres, runErr = fx.runSandboxed(id, opts.Adjust, out, errb)
		var se *airlock.SetupError
		if errors.Is(runErr, airlock.ErrUnsupported) {
			return res, fmt.Errorf("selftest: airlock has no sandbox backend on this system: %w", runErr)
		}
		if errors.As(runErr, &se) {
			res.Verdict, res.Source, res.Reason = Error, "setup", "sandbox setup failed: "+runErr.Error()
			return res, nil
		}
	} else {
		runErr = fx.runBare(id, out, errb)
	}
	if id == "E1" {
		fx.drainPty(out)
	}
	if watch != nil {
		v := <-watch
		effects = append(effects, v.bad...)
		if !v.found {
			hostNote = "host could not find the probe's process; "
		} else if len(v.bad) == 0 {
			hostNote = fmt.Sprintf("host sees %d fds in the probe, none beyond stdio and the Go poller; ", v.n)
		}
	}
	if id == "C5" {
		fx.waitTokenProcs()
	}
	after := fx.snapshot()
	effects = append(effects, diff(before, after)...)
	if id == "G6" && !sandboxed && out.total >= 256<<20 {
		effects = append(effects, fmt.Sprintf("broker received all %d bytes", out.total))
	}
	if sandboxed && id == "G6" && sres != nil && sres.OutputBytes >= 256<<20 {
		effects = append(effects, fmt.Sprintf("broker received all %d bytes", sres.OutputBytes))
	}
	fx.restore(before)
	rep, perr := probe.ParseReport(out.Bytes())
	res.Report = rep
	switch {
	case len(effects) > 0:
		res.Verdict, res.Source, res.Evidence = Escaped, "oracle", strings.Join(effects, "; ")
		if rep != nil && rep.Detail != "" {
			res.Evidence += " (probe: " + rep.Detail + ")"
		}
	case rep != nil && rep.Escaped:
		res.Verdict, res.Source, res.Evidence = Escaped, "probe", rep.Detail
	case sres != nil && limitStatus(sres.Status):
		res.Verdict, res.Source, res.Evidence = Blocked, "limit", "stopped by the sandbox: "+string(sres.Status)
		if rep != nil {
			res.Evidence += "; before that: " + summarize(rep)
		}
	case sres != nil && strings.Contains(sres.Signal, "SYS"):
		res.Verdict, res.Source, res.Evidence = Blocked, "seccomp", "killed by "+sres.Signal
	case perr != nil && sres != nil && limitsFor(id).Memory > 0 && memoryFailure(errb.Bytes()):
		res.Verdict, res.Source = Blocked, "limit"
		res.Evidence = "the probe's runtime could not get memory under the limit: " + firstLine(errb.Bytes())
		if m, ok := sres.Enforced.Lookup("memory"); ok {
			res.Evidence += fmt.Sprintf(" (memory limit %s by %s: %s)", m.State, m.Mechanism, m.Detail)
		}
	case perr != nil:
		res.Verdict, res.Source = Error, "probe"
		res.Reason = fmt.Sprintf("%v (run: %v; stderr: %s)", perr, runErr, strings.TrimSpace(string(errb.Bytes())))
	default:
		res.Verdict, res.Source = Blocked, "probe"
		if o := oracles[id]; o != "" {
			res.Source = "oracle"
			res.Evidence = "no effect seen by " + o + "; "
		}
		res.Evidence += hostNote + summarize(rep)
	}
	return res, nil
}

// memoryFailure spots a Go runtime that died for lack of address space.
func memoryFailure(stderr []byte) bool {
	s := string(stderr)
	return strings.Contains(s, "fatal error: failed to reserve") || strings.Contains(s, "out of memory") ||
		strings.Contains(s, "cannot allocate memory")
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// runBare runs the probe without a sandbox (validation mode).
func (fx *fixtures) runBare(id string, out, errb io.Writer) error {
	bin := fx.binary
	c := exec.Command(bin, append([]string{"__probe", id}, fx.args(id, false)...)...)
	c.Env = os.Environ()
	c.Stdout, c.Stderr = out, errb
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.Dir = fx.scratch
	switch id {
	case "A3", "D5":
		c.ExtraFiles = fx.leakFiles
	case "E1":
		c.Stdin, c.Stdout, c.Stderr = fx.ptySlave, fx.ptySlave, fx.ptySlave
	case "H1":
		// Escalation only shows from an unprivileged start.
		c.Path = fx.plainBin
		c.SysProcAttr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	done := make(chan error, 1)
	if err := c.Start(); err != nil {
		return err
	}
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		return fmt.Errorf("probe %s timed out", id)
	}
}

// runSandboxed runs the probe under the default policy with the fixtures
// bound in (the canary dir is not).
func (fx *fixtures) runSandboxed(id string, adjust func(*airlock.Policy), out, errb io.Writer) (*airlock.Result, error) {
	p := airlock.DefaultPolicy()
	// The default policy shares the working directory; the fixtures may
	// live below it (selftest run from /tmp), so share nothing of it here.
	if wd := p.Workdir; wd != "" {
		kept := p.Mounts[:0]
		for _, m := range p.Mounts {
			if !(m.Kind == airlock.Bind && m.Dest == wd) {
				kept = append(kept, m)
			}
		}
		p.Mounts, p.Workdir = kept, "/"
	}
	p.Mounts = append(p.Mounts,
		airlock.ReadOnly(fx.binary, sandboxProbePath),
		airlock.ReadOnly(fx.ro, fx.ro),
		airlock.ReadWrite(fx.rw, fx.rw))
	p.Limits = limitsFor(id)
	if adjust != nil {
		adjust(&p)
	}
	c := airlock.Command(p, sandboxProbePath, append([]string{"__probe", id}, fx.args(id, true)...)...)
	c.Stdout, c.Stderr = out, errb
	switch id {
	case "A3", "D5":
		// As if the broker itself had inherited these without close-on-exec.
		fx.setLeakInheritable(true)
		defer fx.setLeakInheritable(false)
	case "E1":
		c.Stdin, c.Stdout, c.Stderr = fx.ptySlave, fx.ptySlave, fx.ptySlave
	}
	err := c.Run()
	var ee *airlock.ExitError
	if errors.As(err, &ee) {
		err = nil
	}
	return c.Result, err
}

// fdAllowed are the fds a Go probe opens itself (the runtime's poller).
var fdAllowed = []string{"anon_inode:[eventpoll]", "anon_inode:[eventfd]", "anon_inode:[pidfd]"}

// watchFds finds the probe on the host by its token and lists its fds
// from outside (the runc create.bats allow-list idea): only 0-2 and the
// runtime's own poller fds may be there.
func (fx *fixtures) watchFds(id string) chan fdView {
	ch := make(chan fdView, 1)
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			for _, pid := range fx.tokenProcs(false) {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if !bytes.Contains(b, []byte("__probe\x00"+id+"\x00")) {
					continue
				}
				dir := fmt.Sprintf("/proc/%d/fd", pid)
				ents, err := os.ReadDir(dir)
				if err != nil {
					continue
				}
				var bad []string
				for _, e := range ents {
					n, _ := strconv.Atoi(e.Name())
					link, _ := os.Readlink(filepath.Join(dir, e.Name()))
					if n <= 2 || link == "" || slices.Contains(fdAllowed, link) {
						continue
					}
					bad = append(bad, fmt.Sprintf("host sees fd %d -> %s in the probe", n, link))
				}
				ch <- fdView{found: true, bad: bad, n: len(ents)}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		ch <- fdView{}
	}()
	return ch
}

type fdView struct {
	found bool
	n     int
	bad   []string
}

// drainPty moves the probe's output from the pty master into out and
// reports, through the input-queue check in snapshot, any injected bytes.
func (fx *fixtures) drainPty(out io.Writer) {
	fd := int(fx.ptyMaster.Fd())
	unix.SetNonblock(fd, true)
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			break
		}
		out.Write(buf[:n])
	}
}

// waitTokenProcs gives the tree a second to be gone, as THREATS.md C5 asks.
func (fx *fixtures) waitTokenProcs() {
	for i := 0; i < 10 && len(fx.tokenProcs(false)) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

// snapshot is the host-side state the oracles compare.
type snapshot struct {
	tree     map[string]string
	secret   []byte
	signals  string
	victim   string
	accepts  map[string]int64
	mounts   []string
	knobs    map[string]string
	binSum   [32]byte
	injected []byte
	procs    []int
}

var watchedKnobs = []string{
	"/proc/sys/kernel/core_pattern", "/proc/sys/vm/panic_on_oom", "/proc/sys/fs/suid_dumpable",
	"/proc/sys/kernel/hostname", "/proc/sys/kernel/modprobe", "/proc/sys/user/max_user_namespaces",
}

func (fx *fixtures) snapshot() *snapshot {
	s := &snapshot{tree: map[string]string{}, accepts: map[string]int64{}, knobs: map[string]string{}}
	for _, d := range []string{fx.canary, fx.ro} {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			var st unix.Stat_t
			if unix.Lstat(p, &st) == nil {
				s.tree[p] = fmt.Sprintf("mode %o size %d mtime %d.%d nlink %d", st.Mode, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Nlink)
			}
			return nil
		})
	}
	s.secret, _ = os.ReadFile(filepath.Join(fx.canary, "secret"))
	sig, _ := os.ReadFile(fx.victimLog)
	s.signals = string(sig)
	pid := strconv.Itoa(fx.victim.Process.Pid)
	stat, _ := os.ReadFile("/proc/" + pid + "/stat")
	if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 17 {
		s.victim = "nice " + f[16]
	}
	lim, _ := os.ReadFile("/proc/" + pid + "/limits")
	st, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "Cpus_allowed_list") {
			s.victim += "; " + l
		}
	}
	s.victim += "; " + string(lim)
	for k, v := range fx.servers {
		s.accepts[k] = v.accepts.Load()
	}
	s.mounts = fx.mountsUnder()
	for _, k := range watchedKnobs {
		b, _ := os.ReadFile(k)
		s.knobs[k] = string(b)
	}
	s.binSum, _ = fileSum(fx.binary)
	unix.SetNonblock(int(fx.ptySlave.Fd()), true)
	buf := make([]byte, 256)
	if n, _ := unix.Read(int(fx.ptySlave.Fd()), buf); n > 0 {
		s.injected = buf[:n]
	}
	s.procs = fx.tokenProcs(true)
	return s
}

// diff lists the effects an oracle sees between two snapshots.
func diff(a, b *snapshot) []string {
	var out []string
	for p, v := range b.tree {
		if w, ok := a.tree[p]; !ok {
			out = append(out, "new file "+p)
		} else if w != v {
			out = append(out, fmt.Sprintf("%s changed (%s -> %s)", p, w, v))
		}
	}
	for p := range a.tree {
		if _, ok := b.tree[p]; !ok {
			out = append(out, "file removed "+p)
		}
	}
	if !bytes.Equal(a.secret, b.secret) {
		out = append(out, "canary secret content changed")
	}
	if b.signals != a.signals {
		out = append(out, "VICTIM received "+strings.Join(strings.Fields(strings.TrimPrefix(b.signals, a.signals)), ","))
	}
	if a.victim != b.victim {
		out = append(out, "VICTIM scheduling or limits changed")
	}
	for k, n := range b.accepts {
		if n != a.accepts[k] {
			out = append(out, fmt.Sprintf("%s server saw %d connection(s)", k, n-a.accepts[k]))
		}
	}
	if len(b.mounts) > len(a.mounts) {
		out = append(out, "new host mount under the fixtures: "+strings.Join(b.mounts, ","))
	}
	for k, v := range b.knobs {
		if a.knobs[k] != v {
			out = append(out, k+" changed")
		}
	}
	if a.binSum != b.binSum {
		out = append(out, "airlock binary sha256 changed")
	}
	if len(b.injected) > 0 {
		out = append(out, fmt.Sprintf("pty input queue got %q", b.injected))
	}
	if len(b.procs) > 0 {
		out = append(out, fmt.Sprintf("%d process(es) outlived the probe", len(b.procs)))
	}
	sort.Strings(out)
	return out
}

// restore puts the fixtures back after a probe: new files and links go,
// mounts are detached.
func (fx *fixtures) restore(before *snapshot) {
	fx.unmountAll()
	for _, d := range []string{fx.canary, fx.ro} {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && before.tree[p] == "" {
				os.RemoveAll(p)
				if e != nil && e.IsDir() {
					return filepath.SkipDir
				}
			}
			return nil
		})
	}
	for _, d := range []string{fx.rw, fx.scratch} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(d, e.Name()))
		}
	}
}
