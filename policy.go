package airlock

import (
	"errors"
	"fmt"
	"github.com/airlock-sandbox/airlock/internal/netns"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// MountKind says what a Mount puts at its destination.
type MountKind int

const (
	// Bind makes a host path visible in the sandbox.
	Bind MountKind = iota
	// TmpfsMount is an empty private in-memory filesystem.
	TmpfsMount
	// Symlink creates a symbolic link Dest -> Source inside the sandbox.
	Symlink
	// File creates a read-only file at Dest holding Data.
	File
)

// Mount is one entry of the sandbox's filesystem view.
type Mount struct {
	Kind     MountKind `toml:"kind" json:"kind"`
	Source   string    `toml:"source,omitempty" json:"source,omitempty"`
	Dest     string    `toml:"dest" json:"dest"`
	Writable bool      `toml:"writable,omitempty" json:"writable,omitempty"`
	// Size caps a tmpfs in bytes (0: Limits.TmpfsSize).
	Size int64 `toml:"size,omitempty" json:"size,omitempty"`
	// Optional skips a bind whose source does not exist instead of failing.
	Optional bool   `toml:"optional,omitempty" json:"optional,omitempty"`
	Data     []byte `toml:"-" json:"-"`
}

// ReadOnly binds host path src at dst (dst "" means src) read-only.
func ReadOnly(src, dst string) Mount {
	if dst == "" {
		dst = src
	}
	return Mount{Kind: Bind, Source: src, Dest: dst}
}

// ReadWrite binds host path src at dst (dst "" means src) writable.
func ReadWrite(src, dst string) Mount {
	m := ReadOnly(src, dst)
	m.Writable = true
	return m
}

// Tmpfs mounts an empty writable tmpfs of at most size bytes at dst
// (size 0: Limits.TmpfsSize).
func Tmpfs(dst string, size int64) Mount {
	return Mount{Kind: TmpfsMount, Dest: dst, Writable: true, Size: size}
}

// NetworkMode selects how much network the sandbox gets.
type NetworkMode string

const (
	// NetNone gives the sandbox its own network namespace with only loopback.
	NetNone NetworkMode = "none"
	// NetAllow gives TCP egress to the listed destinations only, through the
	// broker's proxy.
	NetAllow NetworkMode = "allow"
	// NetHost shares the host's network: no network isolation at all.
	NetHost NetworkMode = "host"
)

// Network is the sandbox's network policy.
type Network struct {
	Mode NetworkMode `toml:"mode" json:"mode"`
	// Allow and Deny list host names (with "*." wildcards), IPs or CIDRs,
	// each optionally with ":port". Deny wins.
	Allow        []string `toml:"allow,omitempty" json:"allow,omitempty"`
	Deny         []string `toml:"deny,omitempty" json:"deny,omitempty"`
	AllowPrivate bool     `toml:"allow_private,omitempty" json:"allow_private,omitempty"`
	// Forward makes host loopback addresses ("127.0.0.1:5432") reachable
	// inside; Publish makes sandbox ports reachable from the host.
	Forward []string `toml:"forward,omitempty" json:"forward,omitempty"`
	Publish []string `toml:"publish,omitempty" json:"publish,omitempty"`
}

// Limits bound what the sandboxed process tree may consume. Zero means the
// default for that limit (see DefaultLimits); a negative value means none.
type Limits struct {
	CPUTime   time.Duration `toml:"cpu_time,omitempty" json:"cpu_time,omitempty"`
	WallTime  time.Duration `toml:"wall_time,omitempty" json:"wall_time,omitempty"`
	Memory    int64         `toml:"memory,omitempty" json:"memory,omitempty"`
	Procs     int           `toml:"procs,omitempty" json:"procs,omitempty"`
	Output    int64         `toml:"output,omitempty" json:"output,omitempty"`
	FileSize  int64         `toml:"file_size,omitempty" json:"file_size,omitempty"`
	OpenFiles int           `toml:"open_files,omitempty" json:"open_files,omitempty"`
	Stack     int64         `toml:"stack,omitempty" json:"stack,omitempty"`
	CPUs      float64       `toml:"cpus,omitempty" json:"cpus,omitempty"`
	TmpfsSize int64         `toml:"tmpfs_size,omitempty" json:"tmpfs_size,omitempty"`
}

// DefaultTmpfsSize caps /tmp, $HOME and other tmpfs mounts without a size.
const DefaultTmpfsSize = 64 << 20

// SyscallPolicy selects the seccomp preset and adjustments.
type SyscallPolicy struct {
	// Preset is "default", "strict" or "permissive" ("" is "default").
	Preset string   `toml:"preset,omitempty" json:"preset,omitempty"`
	Allow  []string `toml:"allow,omitempty" json:"allow,omitempty"`
	Deny   []string `toml:"deny,omitempty" json:"deny,omitempty"`
}

// Enforcement says what to do when a protection cannot be applied.
type Enforcement string

const (
	// Strict refuses to run when any requested protection is unavailable.
	Strict Enforcement = "strict"
	// BestEffort runs anyway and reports each degraded protection.
	BestEffort Enforcement = "best-effort"
)

// LinuxOptions are Linux-only settings, ignored elsewhere.
type LinuxOptions struct {
	// HostUID and HostGID are the unprivileged host ids the sandbox user maps
	// to when the broker runs as root (0: 65534, "nobody"). An unprivileged
	// broker always maps the sandbox user to itself.
	HostUID int `toml:"host_uid,omitempty" json:"host_uid,omitempty"`
	HostGID int `toml:"host_gid,omitempty" json:"host_gid,omitempty"`
}

// Policy says what a sandboxed program may do. It is a plain value: copy it
// and change the copy freely.
type Policy struct {
	Mounts   []Mount       `toml:"mounts,omitempty" json:"mounts,omitempty"`
	Workdir  string        `toml:"workdir,omitempty" json:"workdir,omitempty"`
	Env      []string      `toml:"env,omitempty" json:"env,omitempty"`
	Hostname string        `toml:"hostname,omitempty" json:"hostname,omitempty"`
	Network  Network       `toml:"network" json:"network"`
	Limits   Limits        `toml:"limits" json:"limits"`
	Syscalls SyscallPolicy `toml:"syscalls" json:"syscalls"`
	Enforce  Enforcement   `toml:"enforce,omitempty" json:"enforce,omitempty"`
	// Require lists second-wall mechanisms whose absence must stop the run
	// even though the first wall holds: "landlock".
	Require []string     `toml:"require,omitempty" json:"require,omitempty"`
	Linux   LinuxOptions `toml:"linux" json:"linux"`
}

// DefaultPath is the PATH a sandboxed program gets unless the policy sets one.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

// systemDirs are bound read-only (or recreated as symlinks) by DefaultPolicy.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// etcFiles is the small, secret-free part of /etc that programs need.
var etcFiles = []string{
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "hosts", "resolv.conf",
	"nsswitch.conf", "host.conf", "gai.conf", "protocols", "services",
	"ssl", "ca-certificates", "ca-certificates.conf", "pki", "localtime",
	"timezone", "alternatives", "os-release", "debian_version", "mime.types",
	"inputrc", "bash.bashrc", "profile", "environment", "java-17-openjdk",
	"python3", "python3.11", "perl", "vim", "magic", "magic.mime",
}

// DefaultPolicy is the policy `airlock run` uses with no flags: a read-only
// system, the caller's working directory read-only as the working directory,
// private writable /tmp and $HOME, no network, explicit environment.
func DefaultPolicy() Policy {
	var p Policy
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			if t, err := os.Readlink(d); err == nil {
				p.Mounts = append(p.Mounts, Mount{Kind: Symlink, Source: t, Dest: d})
			}
		case fi.IsDir():
			p.Mounts = append(p.Mounts, ReadOnly(d, d))
		}
	}
	for _, f := range etcFiles {
		p.Mounts = append(p.Mounts, etcEntry("/etc/"+f)...)
	}
	home := sandboxHome()
	p.Mounts = append(p.Mounts, Tmpfs("/tmp", 0), Tmpfs(home, 0))
	// The working directory is shared read-only, except when it is the home
	// directory or above it: that would expose the user's secrets.
	if wd, err := os.Getwd(); err == nil && wd != "/" && !within(os.Getenv("HOME"), wd) {
		p.Mounts = append(p.Mounts, ReadOnly(wd, wd))
		p.Workdir = wd
	} else {
		p.Workdir = home
	}
	term := os.Getenv("TERM")
	if term == "" {
		term = "dumb"
	}
	lang := os.Getenv("LANG")
	if lang == "" {
		lang = "C.UTF-8"
	}
	p.Env = []string{"PATH=" + DefaultPath, "HOME=" + home, "TERM=" + term, "LANG=" + lang}
	p.Network.Mode = NetNone
	p.Enforce = Strict
	p.Syscalls.Preset = "default"
	return p
}

// sandboxHome is the path of the sandbox's private home: the caller's home
// path when it is an ordinary directory, so programs find their usual
// layout, backed by an empty tmpfs.
func sandboxHome() string {
	h := os.Getenv("HOME")
	if h == "" || h == "/" || !filepath.IsAbs(h) {
		return "/home/sandbox"
	}
	return filepath.Clean(h)
}

// Validate reports the first thing wrong with p, naming the field.
func (p *Policy) Validate() error {
	for i, m := range p.Mounts {
		if err := m.validate(); err != nil {
			return fmt.Errorf("mount %d (%s): %w", i, m.Dest, err)
		}
	}
	if p.Workdir != "" && !isAbs(p.Workdir) {
		return fmt.Errorf("workdir %q: must be an absolute path", p.Workdir)
	}
	for _, e := range p.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.ContainsAny(k, "\x00") || strings.Contains(e, "\x00") {
			return fmt.Errorf("env %q: want KEY=VALUE without NUL bytes", e)
		}
	}
	if len(p.Hostname) > 64 {
		return fmt.Errorf("hostname %q: longer than 64 bytes", p.Hostname)
	}
	for _, c := range []byte(p.Hostname) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("hostname %q: letters, digits, '-' and '.' only", p.Hostname)
		}
	}
	switch p.Network.Mode {
	case "", NetNone, NetHost:
		if len(p.Network.Allow) > 0 {
			return fmt.Errorf("network: mode %s with an allow list: the list would be ignored; use mode allow", orNone(p.Network.Mode))
		}
	case NetAllow:
		if len(p.Network.Allow) == 0 {
			return errors.New("network: mode allow needs at least one allowed destination")
		}
	default:
		return fmt.Errorf("network mode %q: want none, allow or host", p.Network.Mode)
	}
	for _, f := range p.Network.Forward {
		if _, err := netns.ParseForward(f); err != nil {
			return err
		}
	}
	for _, pb := range p.Network.Publish {
		if _, err := netns.ParsePublish(pb); err != nil {
			return err
		}
	}
	if err := p.Limits.validate(); err != nil {
		return err
	}
	switch p.Syscalls.Preset {
	case "", "default", "strict", "permissive":
	default:
		return fmt.Errorf("syscalls preset %q: want default, strict or permissive", p.Syscalls.Preset)
	}
	switch p.Enforce {
	case "", Strict, BestEffort:
	default:
		return fmt.Errorf("enforce %q: want strict or best-effort", p.Enforce)
	}
	for _, r := range p.Require {
		if r != "landlock" {
			return fmt.Errorf("require %q: known mechanisms: landlock", r)
		}
	}
	// An id map takes 32-bit ids, and 4294967295 is "no id": a larger
	// value would wrap, 4294967296 to 0, host root.
	for _, id := range []struct {
		name string
		v    int
	}{{"host_uid", p.Linux.HostUID}, {"host_gid", p.Linux.HostGID}} {
		if id.v < 0 || int64(id.v) >= 1<<32-1 {
			return fmt.Errorf("linux %s %d: want an id between 1 and 4294967294", id.name, id.v)
		}
	}
	return nil
}

// isAbs accepts host paths and sandbox paths ("/tmp" is a sandbox path on
// every OS, also where filepath.IsAbs says no).
func isAbs(p string) bool { return strings.HasPrefix(p, "/") || filepath.IsAbs(p) }

// cleanOf cleans a path in its own syntax.
func cleanOf(p string) string {
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return filepath.Clean(p)
}

func (m Mount) validate() error {
	if !isAbs(m.Dest) {
		return fmt.Errorf("destination %q: must be an absolute path", m.Dest)
	}
	if c := cleanOf(m.Dest); c != m.Dest && c+"/" != m.Dest {
		return fmt.Errorf("destination %q: must be a clean path (no .., no //)", m.Dest)
	}
	if strings.ContainsRune(m.Dest, 0) || strings.ContainsRune(m.Source, 0) {
		return errors.New("path contains a NUL byte")
	}
	switch m.Kind {
	case Bind:
		if !isAbs(m.Source) {
			return fmt.Errorf("source %q: must be an absolute path", m.Source)
		}
		if m.Dest == "/" {
			return errors.New("binding over / is not allowed; bind directories below it")
		}
	case TmpfsMount:
		if m.Size < 0 {
			return fmt.Errorf("tmpfs size %d: must not be negative", m.Size)
		}
	case Symlink:
		if m.Source == "" {
			return errors.New("symlink target is empty")
		}
	case File:
	default:
		return fmt.Errorf("unknown mount kind %d", m.Kind)
	}
	return nil
}

func (l Limits) validate() error {
	// NaN and infinities pass a sign check; a bandwidth over 65536 CPUs
	// overflows the cgroup quota.
	if l.CPUs < 0 || l.CPUs != l.CPUs || l.CPUs > 65536 {
		return fmt.Errorf("cpus %g: want a number of CPUs between 0 and 65536", l.CPUs)
	}
	for _, x := range []struct {
		name string
		v    int64
	}{{"memory", l.Memory}, {"procs", int64(l.Procs)}, {"output", l.Output}, {"file_size", l.FileSize},
		{"open_files", int64(l.OpenFiles)}, {"stack", l.Stack}, {"tmpfs_size", l.TmpfsSize}} {
		if x.v < 0 {
			return fmt.Errorf("%s %d: must not be negative", x.name, x.v)
		}
	}
	if l.Memory > 0 && l.Memory < 1<<20 {
		return fmt.Errorf("memory %d bytes: below the 1 MiB minimum a process needs", l.Memory)
	}
	if l.Stack > 0 && l.Stack < 64<<10 {
		return fmt.Errorf("stack %d bytes: below the 64 KiB minimum", l.Stack)
	}
	if l.WallTime < 0 || l.CPUTime < 0 {
		return errors.New("time limits must not be negative")
	}
	return nil
}

// withDefaults fills the zero fields that have defaults.
func (p Policy) withDefaults() Policy {
	if p.Network.Mode == "" {
		p.Network.Mode = NetNone
	}
	if p.Syscalls.Preset == "" {
		p.Syscalls.Preset = "default"
	}
	if p.Enforce == "" {
		p.Enforce = Strict
	}
	if p.Limits.TmpfsSize == 0 {
		p.Limits.TmpfsSize = DefaultTmpfsSize
	}
	return p
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	if path == "" {
		return false
	}
	path, dir = filepath.Clean(path), filepath.Clean(dir)
	return path == dir || strings.HasPrefix(path, dir+"/") || dir == "/"
}

// etcEntry shares one /etc entry: small files are copied into the sandbox
// (cheaper than a bind mount each, and a later change on the host cannot
// reach the sandbox), directories are bound read-only.
func etcEntry(path string) []Mount {
	if runtime.GOOS != "linux" {
		// Backends without a private filesystem view grant the host path.
		if _, err := os.Stat(path); err != nil {
			return nil
		}
		m := ReadOnly(path, path)
		m.Optional = true
		return []Mount{m}
	}
	data, dir, ok := readEtc(path)
	switch {
	case !ok:
		return nil
	case dir:
		m := ReadOnly(path, path)
		m.Optional = true
		return []Mount{m}
	}
	return []Mount{{Kind: File, Dest: path, Data: data}}
}

func (p *Policy) requires(name string) bool {
	for _, r := range p.Require {
		if r == name {
			return true
		}
	}
	return false
}

func orNone(m NetworkMode) NetworkMode {
	if m == "" {
		return NetNone
	}
	return m
}
