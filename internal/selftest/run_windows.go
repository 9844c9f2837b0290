package selftest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/airlock-sandbox/airlock"
	"github.com/airlock-sandbox/airlock/internal/probe"
)

// winOracles names the host-side checks that judge each Windows probe;
// the others are judged by the probe's own report (a read or an open
// handle leaves no trace the host can see).
var winOracles = map[string]string{
	"A9": "canary and read-only trees", "F1": "TCP server accepts",
}

// Probe limits on Windows: G1 and G2 each get the one limit they attack.
const (
	winProcs  = 4
	winMemory = 128 << 20
)

func winLimits(id string) airlock.Limits {
	l := airlock.Limits{WallTime: 60 * time.Second}
	switch id {
	case "G1":
		l.Procs = winProcs
	case "G2":
		l.Memory = winMemory
	}
	return l
}

// winFixtures are what the Windows probes attack.
type winFixtures struct {
	binary string // the probe binary, copied into binDir
	binDir string // granted read-only
	work   string // parent of binDir and ro
	ro     string // granted read-only; holds "file"
	canary string // under the user's profile, never granted; holds "secret"
	token  string
	ln     net.Listener
	mu     sync.Mutex
	peers  []string        // remote addresses the server accepted, in order
	own    map[string]bool // of those, the broker's own settle connections
}

// Run sets up the fixtures, runs the Windows probes one after another and
// judges each from the host side.
func Run(opts Options) (*Scorecard, error) {
	if opts.Binary == "" {
		return nil, errors.New("selftest: no probe binary given")
	}
	ids, err := selectIDs(opts.Only)
	if err != nil {
		return nil, err
	}
	fx, err := setupWin(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("selftest fixtures: %w", err)
	}
	defer fx.cleanup()
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

func selectIDs(only []string) ([]string, error) {
	ids := probe.IDs()
	if len(only) == 0 {
		return ids, nil
	}
	want := map[string]bool{}
	for _, id := range only {
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
	return sel, nil
}

func setupWin(binary string) (fx *winFixtures, err error) {
	b := make([]byte, 16)
	rand.Read(b)
	fx = &winFixtures{token: "airlock-canary-" + hex.EncodeToString(b), own: map[string]bool{}}
	defer func() {
		if err != nil {
			fx.cleanup()
		}
	}()
	profile := os.Getenv("USERPROFILE")
	if profile == "" {
		return nil, errors.New("USERPROFILE is not set; the canary belongs in the user's profile")
	}
	if fx.canary, err = os.MkdirTemp(profile, "airlock-selftest-canary-"); err != nil {
		return nil, err
	}
	if err = os.WriteFile(filepath.Join(fx.canary, "secret"), []byte(fx.token+"\n"), 0o600); err != nil {
		return nil, err
	}
	if fx.work, err = os.MkdirTemp("", "airlock-selftest-"); err != nil {
		return nil, err
	}
	// A grant covers everything below its directory, so it must not
	// cover the canary.
	if within(fx.work, fx.canary) {
		return nil, fmt.Errorf("the temporary directory %s holds the canary %s; set TEMP elsewhere", fx.work, fx.canary)
	}
	// The probe runs from a copy in a directory of its own: granting the
	// binary's real directory could grant much more (Downloads, a checkout).
	fx.binDir, fx.ro = filepath.Join(fx.work, "bin"), filepath.Join(fx.work, "ro")
	for _, d := range []string{fx.binDir, fx.ro} {
		if err = os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err = os.WriteFile(filepath.Join(fx.ro, "file"), []byte("read-only fixture\n"), 0o644); err != nil {
		return nil, err
	}
	fx.binary = filepath.Join(fx.binDir, "airlock-probe.exe")
	if err = copyFile(binary, fx.binary); err != nil {
		return nil, err
	}
	if fx.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := fx.ln.Accept()
			if err != nil {
				return
			}
			fx.mu.Lock()
			fx.peers = append(fx.peers, c.RemoteAddr().String())
			fx.mu.Unlock()
			c.Close()
		}
	}()
	return fx, nil
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (fx *winFixtures) cleanup() {
	if fx.ln != nil {
		fx.ln.Close()
	}
	for _, d := range []string{fx.canary, fx.work} {
		if d != "" {
			removeTree(d)
		}
	}
}

// removeTree is os.RemoveAll with a fallback to plain deletes, file by
// file, for file systems without POSIX delete semantics (Wine, FAT).
func removeTree(d string) error {
	if os.RemoveAll(d) == nil {
		return nil
	}
	var paths []string
	filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return nil
	})
	var last error
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Remove(paths[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			last = err
		}
	}
	return last
}

func (fx *winFixtures) args(id string) []string {
	a := []string{"canary=" + fx.canary, "ro=" + fx.ro, "bin=" + fx.binary, "token=" + fx.token,
		"tcp=" + strconv.Itoa(fx.ln.Addr().(*net.TCPAddr).Port), "broker=" + strconv.Itoa(os.Getpid())}
	l := winLimits(id)
	if l.Procs > 0 {
		a = append(a, "procs="+strconv.Itoa(l.Procs))
	}
	if l.Memory > 0 {
		a = append(a, "mem="+strconv.FormatInt(l.Memory, 10))
	}
	return a
}

// accepts counts the probes' connections. The broker first connects
// itself and waits until the server has accepted that connection: the
// accept queue is in order, so every earlier connection is counted too.
func (fx *winFixtures) accepts() int64 {
	if c, err := net.Dial("tcp", fx.ln.Addr().String()); err == nil {
		me := c.LocalAddr().String()
		fx.mu.Lock()
		fx.own[me] = true
		fx.mu.Unlock()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			fx.mu.Lock()
			seen := slices.Contains(fx.peers, me)
			fx.mu.Unlock()
			if seen {
				break
			}
		}
		c.Close()
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var n int64
	for _, p := range fx.peers {
		if !fx.own[p] {
			n++
		}
	}
	return n
}

// winSnap is the host-side state the oracles compare.
type winSnap struct {
	tree    map[string]string
	secret  []byte
	accepts int64
}

func (fx *winFixtures) snapshot() *winSnap {
	s := &winSnap{tree: map[string]string{}, accepts: fx.accepts()}
	for _, d := range []string{fx.canary, fx.ro} {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if fi, err := e.Info(); err == nil {
				s.tree[p] = fmt.Sprintf("size %d mtime %d", fi.Size(), fi.ModTime().UnixNano())
			}
			return nil
		})
	}
	s.secret, _ = os.ReadFile(filepath.Join(fx.canary, "secret"))
	return s
}

func winDiff(a, b *winSnap) []string {
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
	if string(a.secret) != string(b.secret) {
		out = append(out, "canary secret content changed")
	}
	if n := b.accepts - a.accepts; n != 0 {
		out = append(out, fmt.Sprintf("TCP server saw %d connection(s)", n))
	}
	sort.Strings(out)
	return out
}

// restore puts the fixtures back after a probe.
func (fx *winFixtures) restore(before *winSnap) {
	for _, d := range []string{fx.canary, fx.ro} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if p := filepath.Join(d, e.Name()); before.tree[p] == "" {
				removeTree(p)
			}
		}
	}
	os.WriteFile(filepath.Join(fx.ro, "file"), []byte("read-only fixture\n"), 0o644)
	os.WriteFile(filepath.Join(fx.canary, "secret"), before.secret, 0o600)
}

func (fx *winFixtures) runOne(id string, opts Options) (Result, error) {
	info, _ := probe.Lookup(id)
	res := Result{ID: id, Category: info.Category, Title: info.Title}
	before := fx.snapshot()
	out := &tailBuffer{max: 64 << 10}
	errb := &tailBuffer{max: 8 << 10}
	var sres *airlock.Result
	var runErr error
	if opts.Sandboxed {
		sres, runErr = fx.runSandboxed(id, opts.Adjust, out, errb)
		var se *airlock.SetupError
		if errors.Is(runErr, airlock.ErrUnsupported) {
			return res, fmt.Errorf("selftest: airlock has no sandbox backend on this system: %w", runErr)
		}
		if errors.As(runErr, &se) {
			fx.restore(before)
			res.Verdict, res.Source, res.Reason = Error, "setup", "sandbox setup failed: "+runErr.Error()
			return res, nil
		}
	} else {
		runErr = fx.runBare(id, out, errb)
	}
	after := fx.snapshot()
	effects := winDiff(before, after)
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
	case perr != nil:
		res.Verdict, res.Source = Error, "probe"
		res.Reason = fmt.Sprintf("%v (run: %v; stderr: %s)", perr, runErr, strings.TrimSpace(string(errb.Bytes())))
	default:
		res.Verdict, res.Source = Blocked, "probe"
		if o := winOracles[id]; o != "" {
			res.Source, res.Evidence = "oracle", "no effect seen by "+o+"; "
		}
		if id == "C2" {
			// The probe only opens handles; the broker running this
			// check is the process it aimed at, and it is still alive.
			res.Evidence = "broker still running; "
		}
		res.Evidence += summarize(rep)
	}
	return res, nil
}

// runBare runs the probe without a sandbox (validation mode).
func (fx *winFixtures) runBare(id string, out, errb io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, fx.binary, append([]string{"__probe", id}, fx.args(id)...)...)
	c.Stdout, c.Stderr = out, errb
	c.Dir = fx.work
	c.WaitDelay = 5 * time.Second
	return c.Run()
}

// policyFor is the default policy with the probe's directory and the
// read-only fixture granted (on Windows a grant stays at its own path),
// the working directory not shared, and the probe's limits.
func (fx *winFixtures) policyFor(id string) airlock.Policy {
	p := airlock.DefaultPolicy()
	if wd := p.Workdir; wd != "" {
		kept := p.Mounts[:0]
		for _, m := range p.Mounts {
			if !(m.Kind == airlock.Bind && m.Dest == wd) {
				kept = append(kept, m)
			}
		}
		p.Mounts = kept
	}
	p.Workdir = "/"
	p.Mounts = append(p.Mounts, airlock.ReadOnly(fx.binDir, fx.binDir), airlock.ReadOnly(fx.ro, fx.ro))
	// Winsock needs SystemRoot to load its providers.
	p.Env = append(p.Env, "SystemRoot="+os.Getenv("SystemRoot"))
	p.Limits = winLimits(id)
	return p
}

func (fx *winFixtures) runSandboxed(id string, adjust func(*airlock.Policy), out, errb io.Writer) (*airlock.Result, error) {
	p := fx.policyFor(id)
	if adjust != nil {
		adjust(&p)
	}
	c := airlock.Command(p, fx.binary, append([]string{"__probe", id}, fx.args(id)...)...)
	c.Stdout, c.Stderr = out, errb
	err := c.Run()
	var ee *airlock.ExitError
	if errors.As(err, &ee) {
		err = nil
	}
	return c.Result, err
}
