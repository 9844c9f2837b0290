package airlock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Cmd is a program prepared to run in a sandbox. It mirrors os/exec.Cmd.
type Cmd struct {
	// Policy is what the program may do.
	Policy Policy
	// Path is the program to run, resolved inside the sandbox via its PATH
	// when it has no slash.
	Path string
	// Args holds the command line, Args[0] included.
	Args []string
	// Env adds to (and overrides) Policy.Env; nothing is inherited from the
	// caller's environment.
	Env []string
	// Dir overrides Policy.Workdir.
	Dir string

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// Result is filled by Wait (and by Run, Output, CombinedOutput).
	Result *Result

	// OnDenial, when set, is called as each operation is refused (the first
	// time, with Count 1, and again on later ones), from another goroutine.
	OnDenial func(Denial)

	// OnConnection, when set, is called for each network connection attempt
	// the broker sees (--net allow=), from another goroutine.
	OnConnection func(Connection)

	ctx      context.Context
	proc     process
	started  bool
	closers  []io.Closer // parent ends of pipes, closed after Wait
	childFds []*os.File  // child ends, closed after Start
	copiers  sync.WaitGroup
	copyErr  error
	copyMu   sync.Mutex
	output   *outputBudget
	wallTmr  *time.Timer
	killedBy Status // set when the broker stopped the tree for a limit
	killMu   sync.Mutex
	start    time.Time
}

// Command returns a Cmd that runs name with args under policy p.
func Command(p Policy, name string, arg ...string) *Cmd {
	return &Cmd{Policy: p, Path: name, Args: append([]string{name}, arg...)}
}

// CommandContext is like Command; the sandbox's whole process tree is killed
// when ctx is done before the program exits.
func CommandContext(ctx context.Context, p Policy, name string, arg ...string) *Cmd {
	if ctx == nil {
		panic("airlock: nil Context")
	}
	c := Command(p, name, arg...)
	c.ctx = ctx
	return c
}

// launch is what a backend receives: a validated policy and the target's
// command line, environment and stdio.
type launch struct {
	Policy Policy
	Path   string
	Args   []string
	Env    []string
	Dir    string
	Stdio  [3]*os.File
	// OnDenial and OnConnection report live (may be nil).
	OnDenial     func(Denial)
	OnConnection func(Connection)
	// Terminal, when set, asks for a pseudo-terminal made in the sandbox.
	Terminal *terminal
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// terminal is the pseudo-terminal a target makes for the stdio slots that
// were the caller's terminal; the backend sets master once it runs.
type terminal struct {
	slots      [3]bool
	rows, cols uint16
	null       *os.File // what the slots hold until the target replaces it
	in, out    *os.File // the caller's terminal, relayed
	master     *os.File
}

// process is a started sandbox, as a backend sees it.
type process interface {
	// wait blocks until the whole tree is gone and returns what the kernel
	// reported; a non-nil error is a setup failure.
	wait() (*Result, error)
	// kill stops the whole tree; safe to call more than once and after exit.
	kill()
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the command and returns its standard output.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("airlock: Stdout already set")
	}
	var out bytes.Buffer
	c.Stdout = &out
	err := c.Run()
	return out.Bytes(), err
}

// CombinedOutput runs the command and returns its standard output and error.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil || c.Stderr != nil {
		return nil, errors.New("airlock: Stdout or Stderr already set")
	}
	var out bytes.Buffer
	w := &lockedWriter{w: &out}
	c.Stdout, c.Stderr = w, w
	err := c.Run()
	return out.Bytes(), err
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Start starts the sandboxed program without waiting for it.
func (c *Cmd) Start() error {
	if c.started {
		return errors.New("airlock: already started")
	}
	c.started = true
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return err
		}
	}
	p := c.Policy.withDefaults()
	fail := func(err error) error {
		c.Result = &Result{Status: StatusSetupError, ExitCode: 125, Error: err.Error()}
		c.closeAll()
		return err
	}
	if c.Path == "" {
		return fail(&SetupError{Stage: "command", Err: errors.New("no program given")})
	}
	if err := p.Validate(); err != nil {
		return fail(&SetupError{Stage: "policy", Err: err})
	}
	l := &launch{Policy: p, Path: c.Path, Args: c.Args, Env: mergeEnv(p.Env, c.Env), Dir: c.Dir, OnDenial: c.OnDenial, OnConnection: c.OnConnection}
	if len(l.Args) == 0 {
		l.Args = []string{c.Path}
	}
	if l.Dir == "" {
		l.Dir = p.Workdir
	}
	if l.Dir == "" {
		l.Dir = "/"
	}
	if p.Limits.Output > 0 {
		c.output = &outputBudget{left: p.Limits.Output, exceeded: func() { c.stop(OutputLimit) }}
	}
	var err error
	if l.Stdio[0], err = c.stdin(); err != nil {
		return fail(&SetupError{Stage: "stdin", Err: err})
	}
	if l.Stdio[1], err = c.writer(c.Stdout); err != nil {
		return fail(&SetupError{Stage: "stdout", Err: err})
	}
	// One pipe serves both when they go to the same place, or both are
	// only counted.
	if c.Stderr == c.Stdout && (c.Stdout != nil || c.output != nil) {
		l.Stdio[2] = l.Stdio[1]
	} else if l.Stdio[2], err = c.writer(c.Stderr); err != nil {
		return fail(&SetupError{Stage: "stderr", Err: err})
	}
	if err := c.interposeTerminal(l); err != nil {
		return fail(&SetupError{Stage: "terminal", Err: err})
	}
	c.start = time.Now()
	proc, err := start(l)
	for _, f := range c.childFds {
		f.Close()
	}
	c.childFds = nil
	if err != nil {
		c.closeAll()
		c.copiers.Wait()
		c.Result = &Result{Status: StatusSetupError, ExitCode: 125, Error: err.Error()}
		return err
	}
	if l.Terminal != nil && l.Terminal.master != nil {
		c.relayTerminal(l.Terminal)
	}
	// Publish proc under the lock: a copier may already have hit the output
	// limit while the sandbox was starting; then stop it now.
	c.killMu.Lock()
	c.proc = proc
	early := c.killedBy != ""
	c.killMu.Unlock()
	if early {
		proc.kill()
	}
	if p.Limits.WallTime > 0 {
		c.wallTmr = time.AfterFunc(p.Limits.WallTime, func() { c.stop(WallTimeLimit) })
	}
	if c.ctx != nil && c.ctx.Done() != nil {
		go func() {
			select {
			case <-c.ctx.Done():
				c.stop(Signaled)
			case <-c.waitDone():
			}
		}()
	}
	return nil
}

// stop kills the tree because of a broker-side limit (or cancellation).
func (c *Cmd) stop(why Status) {
	c.killMu.Lock()
	if c.killedBy == "" {
		c.killedBy = why
	}
	proc := c.proc
	c.killMu.Unlock()
	if proc != nil {
		proc.kill()
	}
}

var doneChans sync.Map // *Cmd -> chan struct{}

func (c *Cmd) waitDone() chan struct{} {
	ch, _ := doneChans.LoadOrStore(c, make(chan struct{}))
	return ch.(chan struct{})
}

// Wait waits for the sandboxed tree to end, then fills c.Result. It returns
// nil for status OK, *ExitError for other outcomes, *SetupError when the
// sandbox failed after Start.
func (c *Cmd) Wait() error {
	c.killMu.Lock()
	proc := c.proc
	c.killMu.Unlock()
	if proc == nil {
		return errors.New("airlock: not started")
	}
	res, err := proc.wait()
	if c.wallTmr != nil {
		c.wallTmr.Stop()
	}
	close(c.waitDone())
	doneChans.Delete(c)
	// The tree is gone, so every writer end is closed and the copiers
	// finish. Where a backend cannot guarantee that (a process that left
	// the tree still holds stdout), stop reading after a grace period.
	copied := make(chan struct{})
	go func() { c.copiers.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		c.closeAll()
		<-copied
	}
	c.closeAll()
	if res == nil {
		res = &Result{}
	}
	if res.WallTime == 0 {
		res.WallTime = time.Since(c.start)
	}
	if c.output != nil {
		res.OutputBytes = c.output.used()
	}
	if err != nil {
		res.Status, res.ExitCode, res.Error = StatusSetupError, 125, err.Error()
		c.Result = res
		return err
	}
	c.killMu.Lock()
	why := c.killedBy
	c.killMu.Unlock()
	if why != "" && why != Signaled && (res.Status == Signaled || res.Status == OK || res.Status == NonZeroExit) {
		res.Status = why
	}
	c.Result = res
	if why == Signaled && c.ctx != nil && c.ctx.Err() != nil && res.Status != OK {
		return c.ctx.Err()
	}
	if res.Status == OK {
		c.copyMu.Lock()
		defer c.copyMu.Unlock()
		return c.copyErr
	}
	return &ExitError{Result: res}
}

func (c *Cmd) closeAll() {
	for _, cl := range c.closers {
		cl.Close()
	}
	c.closers = nil
	for _, f := range c.childFds {
		f.Close()
	}
	c.childFds = nil
}

func (c *Cmd) stdin() (*os.File, error) {
	switch r := c.Stdin.(type) {
	case nil:
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		c.childFds = append(c.childFds, f)
		return f, nil
	case *os.File:
		return r, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.childFds = append(c.childFds, pr)
	c.closers = append(c.closers, pw)
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		io.Copy(pw, c.Stdin)
		pw.Close()
	}()
	return pr, nil
}

func (c *Cmd) writer(w io.Writer) (*os.File, error) {
	if w == nil && c.output != nil {
		w = io.Discard // still counted against the output limit
	}
	if w == nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		c.childFds = append(c.childFds, f)
		return f, nil
	}
	if f, ok := w.(*os.File); ok && c.output == nil {
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.childFds = append(c.childFds, pw)
	c.closers = append(c.closers, pr)
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		var dst io.Writer = w
		if c.output != nil {
			dst = &limitedWriter{w: w, b: c.output}
		}
		_, err := io.Copy(dst, pr)
		if err != nil && !errors.Is(err, errOutputLimit) {
			c.copyMu.Lock()
			if c.copyErr == nil {
				c.copyErr = err
			}
			c.copyMu.Unlock()
		}
		// Keep draining so the target never blocks on a full pipe after
		// the limit; the tree is being killed anyway.
		io.Copy(io.Discard, pr)
	}()
	return pw, nil
}

// outputBudget counts the bytes of stdout+stderr the broker accepts.
type outputBudget struct {
	mu       sync.Mutex
	left     int64
	total    int64
	over     bool
	exceeded func()
}

var errOutputLimit = errors.New("output limit exceeded")

func (b *outputBudget) take(n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(n) <= b.left {
		b.left -= int64(n)
		b.total += int64(n)
		return n
	}
	ok := int(b.left)
	b.total += b.left
	b.left = 0
	if !b.over {
		b.over = true
		go b.exceeded()
	}
	return ok
}

func (b *outputBudget) used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

type limitedWriter struct {
	w io.Writer
	b *outputBudget
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := l.b.take(len(p))
	if n > 0 {
		if _, err := l.w.Write(p[:n]); err != nil {
			return 0, err
		}
	}
	if n < len(p) {
		return n, errOutputLimit
	}
	return n, nil
}

// mergeEnv returns base with extra applied on top, later keys winning.
func mergeEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
	idx := map[string]int{}
	for _, kv := range append(append([]string{}, base...), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// String describes the command for error messages.
func (c *Cmd) String() string { return fmt.Sprint(c.Args) }

// interposeTerminal keeps the caller's terminal out of the sandbox: the
// stdio slots that are terminals get /dev/null at launch, and the backend
// has the target make a pseudo-terminal of its own in the sandbox (so
// TIOCSTI into the user's shell is impossible, THREATS E1, and ttyname
// works inside); the broker relays it once started.
func (c *Cmd) interposeTerminal(l *launch) error {
	var t *terminal
	for i, f := range l.Stdio {
		if !isTerminal(f) {
			continue
		}
		if t == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			c.childFds = append(c.childFds, null)
			t = &terminal{null: null}
			t.rows, t.cols = terminalSize(f)
		}
		t.slots[i] = true
		if i == 0 {
			t.in = f
		} else if t.out == nil {
			t.out = f
		}
		l.Stdio[i] = t.null
	}
	l.Terminal = t
	return nil
}

// relayTerminal copies between the caller's terminal and the sandbox's,
// and passes on window size changes.
func (c *Cmd) relayTerminal(t *terminal) {
	from := t.in
	if from == nil {
		from = t.out
	}
	c.closers = append(c.closers, closerFunc(followSize(from, t.master)), t.master)
	if t.in != nil {
		go io.Copy(t.master, t.in) // ends at the first read after the run
	}
	// What the target writes to its terminal (echo included) goes to the
	// caller's terminal; with only stdin a terminal, to that one. Whatever
	// cannot be written is still read, so the target never blocks on it.
	out := t.out
	if out == nil {
		out = t.in
	}
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		io.Copy(&tolerant{w: out}, t.master) // EIO once every slave fd is closed
	}()
}

// tolerant writes to w until a write fails, then discards.
type tolerant struct{ w io.Writer }

func (t *tolerant) Write(b []byte) (int, error) {
	if t.w != nil {
		if _, err := t.w.Write(b); err != nil {
			t.w = nil
		}
	}
	return len(b), nil
}

// LaunchPlan returns the ordered list of steps that would build the sandbox
// for c, one per line, without running anything (Linux; elsewhere
// ErrUnsupported).
func (c *Cmd) LaunchPlan() (string, error) {
	p := c.Policy.withDefaults()
	if err := p.Validate(); err != nil {
		return "", &SetupError{Stage: "policy", Err: err}
	}
	l := &launch{Policy: p, Path: c.Path, Args: c.Args, Env: mergeEnv(p.Env, c.Env), Dir: c.Dir}
	if l.Dir == "" {
		l.Dir = p.Workdir
	}
	if l.Dir == "" {
		l.Dir = "/"
	}
	for i := range l.Stdio {
		l.Stdio[i] = []*os.File{os.Stdin, os.Stdout, os.Stderr}[i]
	}
	return launchPlan(l)
}
