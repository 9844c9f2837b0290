package openbsd

import (
	"errors"
	"fmt"
	"github.com/airlock-sandbox/airlock/internal/pathmap"
	"io/fs"
	"path/filepath"
	"sort"
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

// NetMode is the requested network.
type NetMode int

const (
	NetNone NetMode = iota
	NetAllow
	NetHost
)

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
	Mounts []Mount
	Path   string // absolute path of the target
	Args   []string
	Env    []string
	Dir    string
	Net    NetMode
	Limits Limits
	Strict bool
	// Home is the host user's home, for the credential deny list.
	Home string
}

// Host is the part of the host BuildPlan touches, injectable for tests.
type Host struct {
	Stat     func(string) error // nil when the path exists
	Readlink func(string) (string, error)
	TempDir  func(dest string) (string, error)
}

// Unveil is one unveil(2) call.
type Unveil struct{ Path, Perms string }

// Rlimit is one setrlimit(2) call.
type Rlimit struct {
	Name     string // "cpu", "fsize", "nofile", "stack", "data", "core"
	Cur, Max uint64
}

// Note is one line for airlock's Result.Enforced.
type Note struct{ Name, Mechanism, State, Detail string }

// Plan is what the launcher applies, in this order: chdir, rlimits,
// unveils, unveil lock, exec promises, exec.
type Plan struct {
	Dir          string
	Rlimits      []Rlimit
	Unveils      []Unveil
	ExecPromises string
	Path         string
	Args         []string
	Env          []string
	// TempDirs stand in for tmpfs mounts; the broker removes them.
	TempDirs []string `json:"-"`
	Notes    []Note   `json:"-"`
}

// ErrNotEnforceable is wrapped when Strict asks for something OpenBSD lacks.
var ErrNotEnforceable = errors.New("not enforceable on OpenBSD")

// baseUnveils are what a dynamically linked program needs beyond the
// policy's mounts: the runtime linker, its hints, libraries, time zones,
// the public user database (not spwd.db) and /dev/null.
var baseUnveils = []Unveil{
	{"/usr/libexec/ld.so", "rx"}, {"/var/run/ld.so.hints", "r"}, {"/usr/lib", "rx"},
	{"/etc/localtime", "r"}, {"/usr/share/zoneinfo", "r"}, {"/etc/pwd.db", "r"},
	{"/etc/group", "r"}, {"/dev/null", "rw"}, {"/dev/zero", "r"},
}

var netUnveils = []Unveil{{"/etc/resolv.conf", "r"}, {"/etc/hosts", "r"}, {"/etc/ssl", "r"}}

// basePromises let an ordinary program work on the files unveil grants; no
// tty, no id changes, no chown, no pf/route/bpf/audio/video.
const basePromises = "stdio rpath wpath cpath dpath fattr flock unix getpw sendfd recvfd prot_exec"

var secretNames = []string{
	".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker",
	".netrc", ".npmrc", ".pypirc", ".git-credentials", ".password-store",
}

// BuildPlan maps a request onto unveil calls, exec promises and rlimits.
// On error, TempDirs already created are in the returned plan.
func BuildPlan(r Request, h Host) (Plan, error) {
	pl := Plan{Path: r.Path, Args: r.Args, Env: append([]string(nil), r.Env...), Dir: r.Dir}
	if !strings.Contains(r.Path, "/") {
		return pl, fmt.Errorf("program %q: want a path, resolved by the broker", r.Path)
	}
	perms := map[string]string{}
	grant := func(p, pm string) {
		perms[p] = union(perms[p], pm)
	}
	var degraded, binds []string
	var remap [][2]string
	for _, m := range r.Mounts {
		switch m.Kind {
		case Bind:
			if filepath.Clean(m.Source) != filepath.Clean(m.Dest) {
				return pl, fmt.Errorf("mount %s: OpenBSD has no unprivileged bind mounts, so the source must be the same path as the destination (source is %s)", m.Dest, m.Source)
			}
			if err := h.Stat(m.Source); err != nil {
				if m.Optional && errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return pl, fmt.Errorf("mount %s: %w", m.Dest, err)
			}
			binds = append(binds, m.Dest)
			if m.Writable {
				grant(filepath.Clean(m.Source), "rwcx")
			} else {
				grant(filepath.Clean(m.Source), "rx")
			}
		case Tmpfs:
			d, err := h.TempDir(m.Dest)
			if err != nil {
				return pl, fmt.Errorf("tmpfs %s: per-run directory: %w", m.Dest, err)
			}
			pl.TempDirs = append(pl.TempDirs, d)
			grant(d, "rwcx")
			remap = append(remap, [2]string{m.Dest, d})
		case Symlink:
			if t, err := h.Readlink(m.Dest); err == nil && t == m.Source {
				continue
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
	granted := make([]string, 0, len(perms))
	for p := range perms {
		granted = append(granted, p)
	}
	for _, u := range baseUnveils {
		grant(u.Path, u.Perms)
	}
	if r.Net != NetNone {
		for _, u := range netUnveils {
			grant(u.Path, u.Perms)
		}
	}
	// Hide credential stores inside a grant with an empty permission set.
	denied := 0
	if r.Home != "" {
		for _, n := range secretNames {
			s := filepath.Join(r.Home, n)
			for _, g := range granted {
				if s != g && strings.HasPrefix(s, strings.TrimRight(g, "/")+"/") {
					perms[s] = ""
					denied++
					break
				}
			}
		}
	}
	for p, pm := range perms {
		pl.Unveils = append(pl.Unveils, Unveil{p, pm})
	}
	sort.Slice(pl.Unveils, func(i, j int) bool { return pl.Unveils[i].Path < pl.Unveils[j].Path })

	tmpSet := false
	for _, rm := range remap {
		move := func(v string) (string, bool) {
			for _, b := range binds {
				if pathmap.Within(b, rm[0]) && pathmap.Within(v, b) {
					return v, false
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
		if !tmpSet && rm[0] == "/tmp" {
			pl.Env = pathmap.SetEnv(pl.Env, "TMPDIR", rm[1])
			tmpSet = true
		}
	}

	if !filepath.IsAbs(pl.Path) {
		// Relative to the working directory the launcher will be in.
		pl.Path = filepath.Join(pl.Dir, pl.Path)
	}

	fsDetail := "only unveiled paths are visible"
	if denied > 0 {
		fsDetail += fmt.Sprintf("; %d credential path(s) hidden inside grants", denied)
	}
	if len(degraded) > 0 {
		pl.Notes = append(pl.Notes, Note{"filesystem", "unveil", "degraded", fsDetail + "; " + strings.Join(degraded, ", ")})
	} else {
		pl.Notes = append(pl.Notes, Note{"filesystem", "unveil", "enforced", fsDetail})
	}
	if len(remap) > 0 {
		pl.Notes = append(pl.Notes, Note{"tmpfs", "per-run directory", "degraded",
			"host directories removed after the run, reached via $HOME/$TMPDIR rewriting; size not limited"})
	}

	promises := basePromises
	switch r.Net {
	case NetNone:
		pl.Notes = append(pl.Notes, Note{"network", "pledge", "enforced", "no inet or dns promise"})
	case NetAllow:
		if r.Strict {
			return pl, fmt.Errorf("network allow-list: %w (pledge cannot limit destinations)", ErrNotEnforceable)
		}
		promises += " inet dns"
		pl.Notes = append(pl.Notes, Note{"network", "pledge", "degraded", "inet allowed: pledge cannot limit destinations; only programs using the proxy are filtered"})
	case NetHost:
		promises += " inet dns"
		pl.Notes = append(pl.Notes, Note{"network", "none", "off", "host network"})
	}

	lim := r.Limits
	notEnf := func(name, why string) error {
		if r.Strict {
			return fmt.Errorf("%s limit: %w (%s)", name, ErrNotEnforceable, why)
		}
		pl.Notes = append(pl.Notes, Note{name, "none", "off", why})
		return nil
	}
	single := lim.Procs == 1
	if single {
		pl.Notes = append(pl.Notes, Note{"processes", "pledge", "enforced", "no proc or exec promise"},
			Note{"process-tree", "process group", "enforced", "no descendants can exist"})
	} else {
		promises += " proc exec"
		if lim.Procs > 1 {
			if err := notEnf("processes", "OpenBSD counts processes per user only"); err != nil {
				return pl, err
			}
		}
		pl.Notes = append(pl.Notes, Note{"process-tree", "process group", "degraded",
			"killed with kill(-pgid); a descendant that calls setsid escapes the kill; the proc promise lets the target signal its user's other processes"})
	}
	pl.ExecPromises = promises
	if lim.CPUs > 0 {
		if err := notEnf("cpus", "OpenBSD has no CPU rate limit"); err != nil {
			return pl, err
		}
	}
	add := func(name string, v uint64) { pl.Rlimits = append(pl.Rlimits, Rlimit{name, v, v}) }
	if lim.Memory > 0 {
		if !single {
			if err := notEnf("memory", "RLIMIT_DATA is per process, not per tree"); err != nil {
				return pl, err
			}
		} else {
			add("data", uint64(lim.Memory))
			pl.Notes = append(pl.Notes, Note{"memory", "rlimit", "degraded", "RLIMIT_DATA of the one process: heap and anonymous memory, not stack or file mappings"})
		}
	}
	if lim.CPUTime > 0 {
		sec := uint64((lim.CPUTime + time.Second - 1) / time.Second)
		// SIGKILL at the limit: SIGXCPU can be ignored, so a hard limit
		// left later would grant the extra time.
		pl.Rlimits = append(pl.Rlimits, Rlimit{"cpu", sec, sec})
		pl.Notes = append(pl.Notes, Note{"cpu-time", "rlimit", "enforced", "per process"})
	}
	if lim.FileSize > 0 {
		add("fsize", uint64(lim.FileSize))
		pl.Notes = append(pl.Notes, Note{"file-size", "rlimit", "enforced", ""})
	}
	if lim.OpenFiles > 0 {
		add("nofile", uint64(lim.OpenFiles))
		pl.Notes = append(pl.Notes, Note{"open-files", "rlimit", "enforced", ""})
	}
	if lim.Stack > 0 {
		add("stack", uint64(lim.Stack))
	}
	add("core", 0)
	return pl, nil
}

// union merges unveil permission strings in "rwxc" order.
func union(a, b string) string {
	var out []byte
	for _, c := range "rwxc" {
		if strings.ContainsRune(a, c) || strings.ContainsRune(b, c) {
			out = append(out, byte(c))
		}
	}
	return string(out)
}
