package cgroup

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// JanitorArg is argv[1] that makes the airlock binary run JanitorMain.
const JanitorArg = "__airlock-cgroup-janitor"

// The janitor is a small process, the airlock binary re-executed, that
// removes this broker's groups once the broker is gone, however it ends: a
// library user's program exits without telling anyone, and a SIGKILLed
// broker cleans nothing. It learns of the end from a pipe whose only write
// end the broker holds and never writes: the kernel closes it at exit.
// A broker keeps a group beyond its run (made ahead with a warm sandbox,
// removed in the background) only while its janitor runs.
var janitor struct {
	mu      sync.Mutex
	enabled bool // this program dispatches JanitorArg
	tried   bool
	running atomic.Bool
	keep    *os.File // the write end, held open for the broker's lifetime
}

// EnableJanitor says that this program runs JanitorMain when given
// JanitorArg (it calls the dispatcher first thing in main).
func EnableJanitor() {
	janitor.mu.Lock()
	janitor.enabled = true
	janitor.mu.Unlock()
}

// StartJanitor starts the janitor once and reports whether it runs. It is
// never started where no dispatcher was enabled.
func StartJanitor() bool {
	janitor.mu.Lock()
	defer janitor.mu.Unlock()
	if janitor.tried || !janitor.enabled {
		return janitor.running.Load()
	}
	janitor.tried = true
	r, w, err := os.Pipe()
	if err != nil {
		return false
	}
	defer r.Close()
	// This very binary, even if its file was replaced since.
	cmd := exec.Command("/proc/self/exe", JanitorArg, strconv.Itoa(os.Getpid()))
	cmd.Stdin = r
	// Its own session: a terminal's ^C or hang-up that ends the broker
	// must not end the janitor too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return false
	}
	janitor.keep = w
	janitor.running.Store(true)
	go func() {
		// Reaped if it dies first (killed by hand): groups are no longer
		// kept from then on.
		cmd.Wait()
		janitor.running.Store(false)
	}()
	return true
}

// JanitorRunning reports whether groups may be kept beyond a run.
func JanitorRunning() bool { return janitor.running.Load() }

// JanitorMain waits for the broker named in args to end (its pipe on stdin
// reaches EOF), then kills and removes that broker's groups and exits.
func JanitorMain(args []string) {
	if len(args) != 1 {
		os.Exit(2)
	}
	broker, err := strconv.Atoi(args[0])
	if err != nil || broker <= 0 {
		os.Exit(2)
	}
	io.Copy(io.Discard, os.Stdin)
	_, l := detectHost()
	if _, err := removeGroups(l, func(pid int) bool { return pid == broker }); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}
