//go:build darwin || openbsd

package airlock

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// groupProc is a target in its own process group: macOS and OpenBSD have no
// pid namespace, so the group is the tree airlock can kill.
type groupProc struct {
	cmd        *exec.Cmd
	pgid       int
	began      time.Time
	cpuLimit   time.Duration
	report     Report
	cleanup    func()
	maxrssUnit uint64 // bytes per ru_maxrss unit: 1 on macOS, 1024 on OpenBSD
	mu         sync.Mutex
	reaped     bool
}

// kill signals the whole process group; after the leader is reaped and the
// group emptied the id could be reused, so it stops then.
func (p *groupProc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		syscall.Kill(-p.pgid, syscall.SIGKILL)
	}
}

// finish waits for the leader, kills what is left of its group (the run
// ends with its first process) and decodes the result.
func (p *groupProc) finish() (*Result, error) {
	err := p.cmd.Wait()
	wall := time.Since(p.began)
	p.mu.Lock()
	syscall.Kill(-p.pgid, syscall.SIGKILL)
	p.reaped = true
	p.mu.Unlock()
	defer p.cleanup()
	ps := p.cmd.ProcessState
	if ps == nil {
		return nil, err
	}
	res := &Result{WallTime: wall, Enforced: p.report}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		res.CPUTime = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		res.MemoryPeak = uint64(ru.Maxrss) * p.maxrssUnit
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		sig := ws.Signal()
		res.Status, res.Signal, res.ExitCode = Signaled, unix.SignalName(sig), 128+int(sig)
		switch {
		case sig == syscall.SIGXCPU, sig == syscall.SIGKILL && p.cpuLimit > 0 && res.CPUTime >= p.cpuLimit-cpuKillSlack(p.cpuLimit):
			res.Status = TimeLimit
		case sig == syscall.SIGXFSZ:
			res.Status = FileSizeLimit
		}
	case ws.ExitStatus() == 0:
		res.Status = OK
	default:
		res.Status, res.ExitCode = NonZeroExit, ws.ExitStatus()
	}
	return res, nil
}

// lookPathIn resolves name in the PATH of env, as the sandbox would; a
// relative path is taken against dir (left alone when dir is "").
func lookPathIn(name string, env []string, dir string) (string, error) {
	if strings.Contains(name, "/") {
		if dir != "" && !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return name, nil
	}
	path := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		f := filepath.Join(d, name)
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("%s: %w in the sandbox PATH", name, fs.ErrNotExist)
}

// removeTree deletes a per-run directory even if the target made parts of
// it unwritable; it never follows symlinks.
func removeTree(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}
