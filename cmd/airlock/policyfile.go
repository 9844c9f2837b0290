package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/airlock-sandbox/airlock"
)

// policyFile is the TOML form of a policy: the same settings as the flags.
type policyFile struct {
	Workdir  string      `toml:"workdir,omitempty"`
	Hostname string      `toml:"hostname,omitempty"`
	Env      []string    `toml:"env,omitempty"`
	RO       []string    `toml:"ro,omitempty"`
	RW       []string    `toml:"rw,omitempty"`
	Tmpfs    []string    `toml:"tmpfs,omitempty"`
	Enforce  string      `toml:"enforce,omitempty"`
	Require  []string    `toml:"require,omitempty"`
	Network  netFile     `toml:"network,omitempty"`
	Limits   limitsFile  `toml:"limits,omitempty"`
	Syscalls syscallFile `toml:"syscalls,omitempty"`
	Linux    linuxFile   `toml:"linux,omitempty"`
}

type netFile struct {
	Mode         string   `toml:"mode,omitempty"`
	Allow        []string `toml:"allow,omitempty"`
	Deny         []string `toml:"deny,omitempty"`
	AllowPrivate bool     `toml:"allow_private,omitempty"`
	Forward      []string `toml:"forward,omitempty"`
	Publish      []string `toml:"publish,omitempty"`
}

type limitsFile struct {
	CPUTime   string  `toml:"cpu_time,omitempty"`
	Timeout   string  `toml:"timeout,omitempty"`
	Memory    string  `toml:"memory,omitempty"`
	Procs     int     `toml:"procs,omitempty"`
	Output    string  `toml:"output,omitempty"`
	FileSize  string  `toml:"fsize,omitempty"`
	TmpfsSize string  `toml:"tmpfs_size,omitempty"`
	OpenFiles int     `toml:"nofile,omitempty"`
	Stack     string  `toml:"stack,omitempty"`
	CPUs      float64 `toml:"cpus,omitempty"`
}

type syscallFile struct {
	Preset string   `toml:"preset,omitempty"`
	Allow  []string `toml:"allow,omitempty"`
	Deny   []string `toml:"deny,omitempty"`
}

type linuxFile struct {
	HostUID int `toml:"host_uid,omitempty"`
	HostGID int `toml:"host_gid,omitempty"`
}

// loadPolicyFile applies a TOML policy file on top of p.
// maxPolicyFile bounds what is read of a policy file.
const maxPolicyFile = 1 << 20

func loadPolicyFile(path string, p *airlock.Policy) error {
	b, err := readPolicyFile(path)
	if err != nil {
		return err
	}
	var f policyFile
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&f)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return fmt.Errorf("%s: unknown setting %q", path, und[0].String())
	}
	s := &settings{p: p}
	return s.applyFile(&f, path)
}

// readPolicyFile reads a regular file of at most maxPolicyFile bytes: a
// FIFO would block and /dev/zero would never end.
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPolicyFile {
		return nil, fmt.Errorf("%s: larger than %d KiB", path, maxPolicyFile>>10)
	}
	return b, nil
}

// settings applies flag-style values to a policy; flags and the file share it.
type settings struct {
	p       *airlock.Policy
	netMode airlock.NetworkMode // set by an earlier --net of the same source
}

func (s *settings) applyFile(f *policyFile, where string) error {
	wrap := func(key string, err error) error { return fmt.Errorf("%s: %s: %v", where, key, err) }
	if f.Workdir != "" {
		s.p.Workdir = f.Workdir
	}
	if f.Hostname != "" {
		s.p.Hostname = f.Hostname
	}
	for _, e := range f.Env {
		if err := s.env(e); err != nil {
			return wrap("env", err)
		}
	}
	for _, v := range f.RO {
		if err := s.bind(v, false); err != nil {
			return wrap("ro", err)
		}
	}
	for _, v := range f.RW {
		if err := s.bind(v, true); err != nil {
			return wrap("rw", err)
		}
	}
	for _, v := range f.Tmpfs {
		if err := s.tmpfs(v); err != nil {
			return wrap("tmpfs", err)
		}
	}
	s.p.Require = append(s.p.Require, f.Require...)
	switch f.Enforce {
	case "":
	case "strict":
		s.p.Enforce = airlock.Strict
	case "best-effort":
		s.p.Enforce = airlock.BestEffort
	default:
		return wrap("enforce", fmt.Errorf("%q: want strict or best-effort", f.Enforce))
	}
	if f.Network.Mode != "" {
		if err := s.net(f.Network.Mode); err != nil {
			return wrap("network.mode", err)
		}
	}
	if len(f.Network.Allow) > 0 && (f.Network.Mode == "none" || f.Network.Mode == "host") {
		return wrap("network", fmt.Errorf("mode %q with an allow list: use one or the other", f.Network.Mode))
	}
	if len(f.Network.Allow) > 0 {
		s.p.Network.Mode = airlock.NetAllow
		s.p.Network.Allow = append(s.p.Network.Allow, f.Network.Allow...)
	}
	s.p.Network.Deny = append(s.p.Network.Deny, f.Network.Deny...)
	s.p.Network.AllowPrivate = s.p.Network.AllowPrivate || f.Network.AllowPrivate
	s.p.Network.Forward = append(s.p.Network.Forward, f.Network.Forward...)
	s.p.Network.Publish = append(s.p.Network.Publish, f.Network.Publish...)
	l := f.Limits
	for _, kv := range []struct {
		key, val string
		set      func(string) error
	}{
		{"limits.cpu_time", l.CPUTime, s.durationTo(&s.p.Limits.CPUTime)},
		{"limits.timeout", l.Timeout, s.durationTo(&s.p.Limits.WallTime)},
		{"limits.memory", l.Memory, s.sizeTo(&s.p.Limits.Memory)},
		{"limits.output", l.Output, s.sizeTo(&s.p.Limits.Output)},
		{"limits.fsize", l.FileSize, s.sizeTo(&s.p.Limits.FileSize)},
		{"limits.tmpfs_size", l.TmpfsSize, s.sizeTo(&s.p.Limits.TmpfsSize)},
		{"limits.stack", l.Stack, s.sizeTo(&s.p.Limits.Stack)},
	} {
		if kv.val != "" {
			if err := kv.set(kv.val); err != nil {
				return wrap(kv.key, err)
			}
		}
	}
	if l.Procs != 0 {
		s.p.Limits.Procs = l.Procs
	}
	if l.OpenFiles != 0 {
		s.p.Limits.OpenFiles = l.OpenFiles
	}
	if l.CPUs != 0 {
		s.p.Limits.CPUs = l.CPUs
	}
	if f.Syscalls.Preset != "" {
		s.p.Syscalls.Preset = f.Syscalls.Preset
	}
	s.p.Syscalls.Allow = append(s.p.Syscalls.Allow, f.Syscalls.Allow...)
	s.p.Syscalls.Deny = append(s.p.Syscalls.Deny, f.Syscalls.Deny...)
	if f.Linux.HostUID != 0 {
		s.p.Linux.HostUID = f.Linux.HostUID
	}
	if f.Linux.HostGID != 0 {
		s.p.Linux.HostGID = f.Linux.HostGID
	}
	return nil
}

func (s *settings) env(v string) error {
	if v == "" || strings.HasPrefix(v, "=") {
		return fmt.Errorf("%q: want KEY=VALUE or KEY", v)
	}
	if !strings.Contains(v, "=") {
		val, ok := os.LookupEnv(v)
		if !ok {
			return fmt.Errorf("%s: not set in the environment", v)
		}
		v += "=" + val
	}
	s.p.Env = append(s.p.Env, v)
	return nil
}

// bind parses PATH[:DEST].
func (s *settings) bind(v string, writable bool) error {
	src, dst, _ := strings.Cut(v, ":")
	if src == "" {
		return fmt.Errorf("%q: want PATH[:DEST]", v)
	}
	if !strings.HasPrefix(src, "/") {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		src = wd + "/" + src
	}
	src = cleanPath(src)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("%s: %v", src, errText(err))
	}
	// The launcher opens a bind's source without following a final
	// symlink (the link could change between check and mount).
	if fi, err := os.Lstat(src); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		to, _ := filepath.EvalSymlinks(src)
		return fmt.Errorf("%s: a symlink; bind the path it points to (%s)", src, to)
	}
	if dst == "" {
		dst = src
	}
	dst = cleanPath(dst)
	if writable {
		s.p.Mounts = append(s.p.Mounts, airlock.ReadWrite(src, dst))
	} else {
		s.p.Mounts = append(s.p.Mounts, airlock.ReadOnly(src, dst))
	}
	return nil
}

// tmpfs parses DEST[:SIZE].
func (s *settings) tmpfs(v string) error {
	dst, size, _ := strings.Cut(v, ":")
	if !strings.HasPrefix(dst, "/") {
		return fmt.Errorf("%q: destination must be an absolute path", v)
	}
	var n int64
	if size != "" {
		var err error
		if n, err = parseSize(size); err != nil {
			return err
		}
	}
	s.p.Mounts = append(s.p.Mounts, airlock.Tmpfs(cleanPath(dst), n))
	return nil
}

func (s *settings) net(v string) error {
	mode, _, _ := strings.Cut(v, "=")
	if s.netMode != "" && string(s.netMode) != mode {
		return fmt.Errorf("%q after --net %s: give one network mode", v, s.netMode)
	}
	switch {
	case v == "none" || v == "host":
		// Overrides the mode and list of a policy file.
		s.p.Network.Mode, s.p.Network.Allow = airlock.NetworkMode(v), nil
		s.netMode = s.p.Network.Mode
	case strings.HasPrefix(v, "allow="):
		s.netMode = airlock.NetAllow
		list := strings.TrimPrefix(v, "allow=")
		if list == "" {
			return fmt.Errorf("%q: allow= needs at least one destination", v)
		}
		s.p.Network.Mode = airlock.NetAllow
		for _, d := range strings.Split(list, ",") {
			if d = strings.TrimSpace(d); d != "" {
				s.p.Network.Allow = append(s.p.Network.Allow, d)
			}
		}
	default:
		return fmt.Errorf("%q: want none, host or allow=HOST[,HOST...]", v)
	}
	return nil
}

func (s *settings) durationTo(d *time.Duration) func(string) error {
	return func(v string) error {
		x, err := time.ParseDuration(v)
		if err != nil {
			if n, err2 := strconv.ParseFloat(v, 64); err2 == nil {
				// Beyond about 292 years a Duration wraps.
				if n*float64(time.Second) >= 1<<62 {
					return fmt.Errorf("%q: too long", v)
				}
				x = time.Duration(n * float64(time.Second))
			} else {
				return fmt.Errorf("%q: want a duration like 1.5s or 500ms", v)
			}
		}
		if x <= 0 {
			return fmt.Errorf("%q: must be positive", v)
		}
		*d = x
		return nil
	}
}

func (s *settings) sizeTo(n *int64) func(string) error {
	return func(v string) error {
		x, err := parseSize(v)
		if err != nil {
			return err
		}
		*n = x
		return nil
	}
}

// parseSize reads 123, 64K, 256M, 2G (powers of 1024).
func parseSize(v string) (int64, error) {
	s := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(v)), "B"), "I")
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) {
		return 0, fmt.Errorf("%q: want a positive size like 64M or 1G", v)
	}
	// Beyond int64 the conversion wraps to a negative size, which reads as
	// no limit at all.
	b := f * float64(mult)
	if b >= 1<<62 {
		return 0, fmt.Errorf("%q: too large (at most 4E)", v)
	}
	if b < 1 {
		return 0, fmt.Errorf("%q: less than one byte", v)
	}
	return int64(b), nil
}

func cleanPath(p string) string {
	parts := strings.Split(p, "/")
	var out []string
	for _, x := range parts {
		switch x {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, x)
		}
	}
	return "/" + strings.Join(out, "/")
}

func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// printPolicy writes p as a policy file.
func printPolicy(p *airlock.Policy) string {
	var f policyFile
	f.Workdir, f.Hostname, f.Env = p.Workdir, p.Hostname, p.Env
	for _, m := range p.Mounts {
		switch m.Kind {
		case airlock.Bind:
			v := m.Source
			if m.Dest != m.Source {
				v += ":" + m.Dest
			}
			if m.Writable {
				f.RW = append(f.RW, v)
			} else {
				f.RO = append(f.RO, v)
			}
		case airlock.TmpfsMount:
			v := m.Dest
			if m.Size > 0 {
				v += ":" + strconv.FormatInt(m.Size, 10)
			}
			f.Tmpfs = append(f.Tmpfs, v)
		}
	}
	f.Enforce, f.Require = string(p.Enforce), p.Require
	f.Network = netFile{Mode: string(p.Network.Mode), Allow: p.Network.Allow, Deny: p.Network.Deny,
		AllowPrivate: p.Network.AllowPrivate, Forward: p.Network.Forward, Publish: p.Network.Publish}
	if f.Network.Mode == string(airlock.NetAllow) {
		f.Network.Mode = ""
	}
	l := p.Limits
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	size := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	f.Limits = limitsFile{CPUTime: dur(l.CPUTime), Timeout: dur(l.WallTime), Memory: size(l.Memory), Procs: l.Procs,
		Output: size(l.Output), FileSize: size(l.FileSize), TmpfsSize: size(l.TmpfsSize), OpenFiles: l.OpenFiles,
		Stack: size(l.Stack), CPUs: l.CPUs}
	f.Syscalls = syscallFile{Preset: p.Syscalls.Preset, Allow: p.Syscalls.Allow, Deny: p.Syscalls.Deny}
	f.Linux = linuxFile{HostUID: p.Linux.HostUID, HostGID: p.Linux.HostGID}
	var b bytes.Buffer
	toml.NewEncoder(&b).Encode(f)
	return b.String()
}
