package darwin

import (
	"errors"
	"fmt"
	"github.com/airlock-sandbox/airlock/internal/pathmap"
	"io/fs"
	"path/filepath"
	"strings"
	"time"
)

// MountKind mirrors airlock.MountKind (this package cannot import airlock).
type MountKind int

const (
	Bind MountKind = iota
	Tmpfs
	Symlink
	File
)

// Mount mirrors the fields of airlock.Mount this backend uses.
type Mount struct {
	Kind     MountKind
	Source   string
	Dest     string
	Writable bool
	Optional bool
}

// Limits mirrors airlock.Limits; zero or negative means no limit.
type Limits struct {
	CPUTime   time.Duration
	Memory    int64
	Procs     int
	FileSize  int64
	OpenFiles int
	Stack     int64
	CPUs      float64
}

// Request is what the backend knows about one run.
type Request struct {
	Mounts    []Mount
	Env       []string
	Dir       string
	Net       NetMode
	ProxyPort int
	Limits    Limits
	Strict    bool
	Tag       string
	// Home is the host user's home, for the credential deny list.
	Home string
	// Launcher says the rlimit launcher hook is installed in this binary.
	Launcher bool
	// TTYs are the terminal devices among the target's stdio.
	TTYs []string
}

// Host is the part of the host Prepare touches, injectable for tests.
type Host struct {
	EvalSymlinks func(string) (string, error)
	Readlink     func(string) (string, error)
	// TempDir creates an empty private directory standing in for the
	// tmpfs at dest.
	TempDir func(dest string) (string, error)
}

// Rlimit is one resource limit the launcher sets before sandbox-exec.
type Rlimit struct {
	Name     string // "cpu", "fsize", "nofile", "stack", "core"
	Cur, Max uint64
}

// Note is one line for airlock's Result.Enforced.
type Note struct{ Name, Mechanism, State, Detail string }

// Plan is everything the backend needs to start the run.
type Plan struct {
	Spec    Spec
	Env     []string
	Dir     string
	Rlimits []Rlimit
	// TempDirs stand in for tmpfs mounts; remove them after the run.
	TempDirs []string
	Notes    []Note
}

// ErrNotEnforceable is wrapped when Strict asks for something macOS lacks.
var ErrNotEnforceable = errors.New("not enforceable on macOS")

// secretNames are credential stores under the user's home, denied even
// when a grant covers them.
var secretNames = []string{
	".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker",
	".netrc", ".npmrc", ".pypirc", ".git-credentials", ".password-store",
	"Library/Keychains", "Library/Cookies", "Library/Application Support/com.apple.TCC",
}

// firmlinks are macOS's top-level symlinks; Seatbelt matches resolved paths.
var firmlinks = [][2]string{{"/tmp", "/private/tmp"}, {"/var", "/private/var"}, {"/etc", "/private/etc"}}

// Canonical resolves p as Seatbelt will see it: symlinks of the longest
// existing prefix resolved, then /tmp, /var, /etc mapped under /private.
func Canonical(p string, eval func(string) (string, error)) string {
	p = filepath.Clean(p)
	if r, err := eval(p); err == nil {
		p = r
	} else if d := filepath.Dir(p); d != p {
		p = filepath.Join(Canonical(d, eval), filepath.Base(p))
	}
	for _, f := range firmlinks {
		if p == f[0] || strings.HasPrefix(p, f[0]+"/") {
			return f[1] + p[len(f[0]):]
		}
	}
	return p
}

// Prepare maps a request onto a Seatbelt spec, per-run directories and
// rlimits. On error, TempDirs already created are in the returned plan.
func Prepare(r Request, h Host) (Plan, error) {
	pl := Plan{Env: append([]string(nil), r.Env...), Dir: r.Dir}
	s := &pl.Spec
	s.Tag, s.Net, s.ProxyPort, s.TTYs = r.Tag, r.Net, r.ProxyPort, r.TTYs
	var degraded []string
	var remap [][2]string // tmpfs dest -> per-run dir
	var binds []string    // bind destinations, which win over a tmpfs below them
	for _, m := range r.Mounts {
		switch m.Kind {
		case Bind:
			if filepath.Clean(m.Source) != filepath.Clean(m.Dest) {
				return pl, fmt.Errorf("mount %s: macOS has no bind mounts, so the source must be the same path as the destination (source is %s)", m.Dest, m.Source)
			}
			c, err := h.EvalSymlinks(m.Source)
			if err != nil {
				if m.Optional && errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return pl, fmt.Errorf("mount %s: %w", m.Dest, err)
			}
			c = Canonical(c, h.EvalSymlinks)
			binds = append(binds, m.Dest)
			if m.Writable {
				s.ReadWrite = append(s.ReadWrite, c)
			} else {
				s.ReadOnly = append(s.ReadOnly, c)
			}
		case Tmpfs:
			d, err := h.TempDir(m.Dest)
			if err != nil {
				return pl, fmt.Errorf("tmpfs %s: per-run directory: %w", m.Dest, err)
			}
			pl.TempDirs = append(pl.TempDirs, d)
			s.ReadWrite = append(s.ReadWrite, Canonical(d, h.EvalSymlinks))
			remap = append(remap, [2]string{m.Dest, d})
		case Symlink:
			if t, err := h.Readlink(m.Dest); err == nil && t == m.Source {
				continue // the host already has this link
			}
			if r.Strict {
				return pl, fmt.Errorf("symlink %s -> %s: %w (no private filesystem view)", m.Dest, m.Source, ErrNotEnforceable)
			}
			degraded = append(degraded, "symlink "+m.Dest+" not created")
		case File:
			if r.Strict {
				return pl, fmt.Errorf("file %s: %w (no private filesystem view)", m.Dest, ErrNotEnforceable)
			}
			degraded = append(degraded, "file "+m.Dest+" not created")
		default:
			return pl, fmt.Errorf("mount %s: unknown kind %d", m.Dest, m.Kind)
		}
	}
	if r.Home != "" {
		grants := append(append([]string(nil), s.ReadOnly...), s.ReadWrite...)
		for _, n := range secretNames {
			c := Canonical(filepath.Join(r.Home, n), h.EvalSymlinks)
			for _, g := range grants {
				if pathmap.Within(c, g) {
					s.Deny = append(s.Deny, c)
					break
				}
			}
		}
	}

	// The target sees host paths, so a tmpfs lives elsewhere: point the
	// environment and working directory at its stand-in.
	tmpSet := false
	for _, rm := range remap {
		move := func(v string) (string, bool) {
			for _, b := range binds {
				if pathmap.Within(b, rm[0]) && pathmap.Within(v, b) {
					return v, false // a bind on top of the tmpfs holds v
				}
			}
			return pathmap.Rebase(v, rm[0], rm[1])
		}
		for i, kv := range pl.Env {
			k, v, _ := strings.Cut(kv, "=")
			if nv, ok := move(v); ok {
				pl.Env[i] = k + "=" + nv
			}
		}
		if nd, ok := move(pl.Dir); ok {
			pl.Dir = nd
		}
		if !tmpSet && Canonical(rm[0], h.EvalSymlinks) == "/private/tmp" {
			pl.Env = pathmap.SetEnv(pl.Env, "TMPDIR", rm[1]+"/")
			tmpSet = true
		}
	}

	fsDetail := "stat() metadata readable everywhere; contents only under grants"
	if len(s.Deny) > 0 {
		fsDetail += fmt.Sprintf("; %d credential path(s) denied inside grants", len(s.Deny))
	}
	if len(degraded) > 0 {
		pl.Notes = append(pl.Notes, Note{"filesystem", "seatbelt", "degraded", fsDetail + "; " + strings.Join(degraded, ", ")})
	} else {
		pl.Notes = append(pl.Notes, Note{"filesystem", "seatbelt", "enforced", fsDetail})
	}
	if len(remap) > 0 {
		pl.Notes = append(pl.Notes, Note{"tmpfs", "per-run directory", "degraded",
			"host directories removed after the run, reached via $HOME/$TMPDIR rewriting; size not limited"})
	}
	switch r.Net {
	case NetNone:
		pl.Notes = append(pl.Notes, Note{"network", "seatbelt", "enforced", "no sockets to anything outside, DNS included"})
	case NetProxy:
		pl.Notes = append(pl.Notes, Note{"network", "seatbelt", "enforced", fmt.Sprintf("TCP only to the broker proxy on localhost:%d", r.ProxyPort)})
	case NetHost:
		pl.Notes = append(pl.Notes, Note{"network", "none", "off", "host network"})
	}
	pl.Notes = append(pl.Notes, Note{"ui", "seatbelt", "enforced", "no clipboard, window server or IOKit"})

	lim := r.Limits
	notEnf := func(name, why string) error {
		if r.Strict {
			return fmt.Errorf("%s limit: %w (%s)", name, ErrNotEnforceable, why)
		}
		pl.Notes = append(pl.Notes, Note{name, "none", "off", why})
		return nil
	}
	switch {
	case lim.Procs == 1:
		s.NoFork = true
		pl.Notes = append(pl.Notes, Note{"processes", "seatbelt", "enforced", "process-fork denied"},
			Note{"process-tree", "process group", "enforced", "no descendants can exist"})
	case lim.Procs > 1:
		if err := notEnf("processes", "macOS counts processes per user only"); err != nil {
			return pl, err
		}
	}
	if !s.NoFork {
		pl.Notes = append(pl.Notes, Note{"process-tree", "process group", "degraded",
			"killed with kill(-pgid); a descendant that calls setsid or setpgid escapes the kill"})
	}
	if lim.Memory > 0 {
		if err := notEnf("memory", "macOS cannot limit a process tree's memory"); err != nil {
			return pl, err
		}
	}
	if lim.CPUs > 0 {
		if err := notEnf("cpus", "macOS has no CPU rate limit"); err != nil {
			return pl, err
		}
	}
	add := func(name string, cur, max uint64) { pl.Rlimits = append(pl.Rlimits, Rlimit{name, cur, max}) }
	if lim.CPUTime > 0 {
		sec := uint64((lim.CPUTime + time.Second - 1) / time.Second)
		// SIGKILL at the limit: SIGXCPU can be ignored, so a hard limit
		// left later would grant the extra time.
		add("cpu", sec, sec)
	}
	if lim.FileSize > 0 {
		add("fsize", uint64(lim.FileSize), uint64(lim.FileSize))
	}
	if lim.OpenFiles > 0 {
		add("nofile", uint64(lim.OpenFiles), uint64(lim.OpenFiles))
	}
	if lim.Stack > 0 {
		add("stack", uint64(lim.Stack), uint64(lim.Stack))
	}
	if len(pl.Rlimits) > 0 && !r.Launcher {
		if r.Strict {
			return pl, fmt.Errorf("rlimits: %w (the airlock launcher hook is not installed in this program)", ErrNotEnforceable)
		}
		for _, rl := range pl.Rlimits {
			pl.Notes = append(pl.Notes, Note{rlimitNote[rl.Name], "none", "off", "launcher hook not installed"})
		}
		pl.Rlimits = nil
	} else {
		for _, rl := range pl.Rlimits {
			pl.Notes = append(pl.Notes, Note{rlimitNote[rl.Name], "rlimit", "enforced", ""})
		}
	}
	if r.Launcher {
		add("core", 0, 0)
	}
	return pl, nil
}

var rlimitNote = map[string]string{"cpu": "cpu-time", "fsize": "file-size", "nofile": "open-files", "stack": "stack"}
