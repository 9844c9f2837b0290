package cgroup

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by New when the host has no usable cgroups.
var ErrUnavailable = errors.New("cgroup: no usable cgroup hierarchy")

var (
	v1Controllers = []string{"memory", "pids", "cpu", "cpuacct", "freezer"}
	v2Controllers = []string{"memory", "pids", "cpu"}
)

// layout is where the broker's own cgroups are: per controller, its
// directory and the mount it was found on (to resolve Spec.Parent).
type layout struct {
	version int
	dirs    map[string]string
	mounts  map[string]mount
}

// Detect reports the cgroup version, controllers, the broker's own cgroup
// and whether this process may create child cgroups there. It changes nothing.
func Detect() Info {
	info, _ := detectHost()
	return info
}

// lastHost keeps the last detection: parsing mountinfo and probing the
// hierarchies costs about 0.3 ms, which every limited run would pay. It is
// reused while the broker's own cgroups (/proc/self/cgroup) are unchanged.
var lastHost struct {
	sync.Mutex
	procCgroup string
	info       Info
	l          layout
}

func detectHost() (Info, layout) {
	pc, err := readSmall("/proc/self/cgroup")
	if err != nil {
		return Info{Reason: "cannot read /proc/self/cgroup: " + err.Error(), Fix: "mount /proc"}, layout{}
	}
	lastHost.Lock()
	defer lastHost.Unlock()
	if lastHost.l.version != 0 && lastHost.procCgroup == string(pc) {
		return lastHost.info, lastHost.l
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Info{Reason: "cannot read /proc/self/mountinfo: " + err.Error(), Fix: "mount /proc"}, layout{}
	}
	info, l := detect(string(pc), string(mi))
	if info.CanCreate {
		lastHost.procCgroup, lastHost.info, lastHost.l = string(pc), info, l
	}
	return info, l
}

func detect(procCgroup, mountinfo string) (Info, layout) {
	info := Info{Controllers: map[string]bool{}, Paths: map[string]string{}}
	l := layout{dirs: map[string]string{}, mounts: map[string]mount{}}
	pc, err := parseProcCgroup(procCgroup)
	if err != nil {
		info.Reason, info.Fix = err.Error(), "mount a fresh procfs for this pid namespace at /proc"
		return info, l
	}
	ms := parseMountinfo(mountinfo)
	for _, c := range v1Controllers {
		p, ok := pc.v1[c]
		if !ok {
			continue
		}
		for _, m := range ms {
			if m.fstype != "cgroup" || !m.has(c) {
				continue
			}
			if dir, ok := m.dirFor(p); ok {
				l.dirs[c], l.mounts[c] = dir, m
				break
			}
		}
	}
	if l.dirs["memory"] != "" {
		l.version = 1
	} else if pc.hasUnified {
		own := pc.unified
		if filepath.Base(own) == leafName { // a broker before us moved the tree into its leaf
			own = filepath.Dir(own)
		}
		for _, m := range ms {
			dir, ok := m.dirFor(own)
			if m.fstype != "cgroup2" || !ok {
				continue
			}
			avail := strings.Fields(readString(filepath.Join(dir, "cgroup.controllers")))
			if !slices.Contains(avail, "memory") {
				continue
			}
			l = layout{version: 2, dirs: map[string]string{}, mounts: map[string]mount{}}
			for _, c := range v2Controllers {
				if slices.Contains(avail, c) {
					l.dirs[c], l.mounts[c] = dir, m
				}
			}
			break
		}
	}
	info.Version = l.version
	for c, d := range l.dirs {
		info.Controllers[c] = true
		info.Paths[c] = d
	}
	switch l.version {
	case 0:
		info.Reason = "no cgroup v1 memory hierarchy and no cgroup v2 with the memory controller is mounted"
		info.Fix = "mount cgroup2 at /sys/fs/cgroup (e.g. boot with systemd.unified_cgroup_hierarchy=1)"
	case 1:
		info.Controllers["memsw"] = exists(filepath.Join(l.dirs["memory"], "memory.memsw.limit_in_bytes"))
		info.CanCreate, info.Reason, info.Fix = canCreateV1(l)
	case 2:
		info.Controllers["kill"] = exists(filepath.Join(l.dirs["memory"], "cgroup.kill"))
		info.CanCreate, info.Reason, info.Fix = canCreateV2(l)
	}
	return info, l
}

const fixRlimits = "; without it airlock falls back to rlimits and reports memory and process limits as approximate"

func canCreateV1(l layout) (bool, string, string) {
	for _, c := range []string{"memory", "pids"} {
		if l.dirs[c] == "" {
			return false, "cgroup v1 " + c + " hierarchy is not mounted", "mount the " + c + " controller" + fixRlimits
		}
	}
	for _, c := range v1Controllers {
		d := l.dirs[c]
		if d == "" {
			continue
		}
		if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
			return false,
				fmt.Sprintf("cgroup v1 without delegation: %s is not writable by uid %d (%v)", d, os.Getuid(), err),
				"cgroup v1 cannot be delegated safely to an unprivileged user: run airlock as root, or on a cgroup v2 host via `systemd-run --user --scope -p Delegate=yes airlock ...`" + fixRlimits
		}
	}
	return true, "", ""
}

func canCreateV2(l layout) (bool, string, string) {
	dir := l.dirs["memory"]
	fix := "run airlock via `systemd-run --user --scope -p Delegate=yes airlock ...`" + fixRlimits
	if l.dirs["pids"] == "" {
		return false, "cgroup v2 controller pids is not delegated to " + dir, fix
	}
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.subtree_control"), filepath.Join(dir, "cgroup.procs")} {
		mode := uint32(unix.W_OK)
		if p == dir {
			mode |= unix.X_OK
		}
		if err := unix.Access(p, mode); err != nil {
			return false, fmt.Sprintf("cgroup v2 without delegation: %s is not writable by uid %d (%v)", p, os.Getuid(), err), fix
		}
	}
	return true, "", ""
}

// Group is one sandbox's cgroup: one directory per v1 hierarchy, or one v2 directory.
type Group struct {
	version int
	dirs    map[string]string // controller -> this group's dir
	list    []string          // unique dirs, in creation order
	closed  bool
	empty   atomic.Bool // Kill found no process left; none can join after that
	// open are the interface files read at the end of a run, opened when
	// the group is made: opening a file of a fresh cgroup makes its kernfs
	// node, which costs more than the read.
	openMu sync.Mutex
	open   map[string]int
}

// New creates airlock-<brokerpid>-<random> below the broker's cgroup (or
// spec.Parent) in every hierarchy airlock uses and applies the limits.
func New(spec Spec) (*Group, error) {
	info, l := detectHost()
	if l.version == 0 {
		return nil, fmt.Errorf("%w: %s; fix: %s", ErrUnavailable, info.Reason, info.Fix)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	g, err := create(l, spec, groupName(os.Getpid(), hex.EncodeToString(b[:])))
	if err != nil && !info.CanCreate && info.Reason != "" {
		err = fmt.Errorf("%w (%s; fix: %s)", err, info.Reason, info.Fix)
	}
	return g, err
}

// mkdir is a variable so tests can fill a fake cgroupfs with interface files.
var mkdir = func(dir string) error { return os.Mkdir(dir, 0o755) }

func create(l layout, spec Spec, name string) (*Group, error) {
	if spec.Memory < 0 || spec.Pids < 0 || spec.CPUs < 0 {
		return nil, fmt.Errorf("cgroup: negative limit in %+v", spec)
	}
	for c, need := range map[string]bool{"memory": spec.Memory > 0, "pids": spec.Pids > 0, "cpu": spec.CPUs > 0} {
		if need && l.dirs[c] == "" {
			return nil, fmt.Errorf("%w: controller %s is not available", ErrUnavailable, c)
		}
	}
	parents := map[string]string{}
	for c, d := range l.dirs {
		if spec.Parent != "" {
			pd, ok := l.mounts[c].dirFor(spec.Parent)
			if !ok {
				return nil, fmt.Errorf("cgroup: parent %s is not visible in the %s hierarchy", spec.Parent, c)
			}
			d = pd
		}
		parents[c] = d
	}
	g := &Group{version: l.version, dirs: map[string]string{}}
	order := v1Controllers
	if l.version == 2 {
		order = v2Controllers
		p := parents["memory"]
		var want []string
		for _, c := range v2Controllers {
			if parents[c] != "" {
				want = append(want, c)
			}
		}
		if err := enableV2(p, want, spec.Parent == ""); err != nil {
			return nil, err
		}
	}
	for _, c := range order {
		p := parents[c]
		if p == "" || (spec.Minimal && l.version == 1 && !spec.needs(c)) {
			continue
		}
		dir := filepath.Join(p, name)
		if !slices.Contains(g.list, dir) {
			if err := mkdir(dir); err != nil {
				g.remove()
				return nil, fmt.Errorf("cgroup: cannot create the sandbox cgroup: %w", err)
			}
			g.list = append(g.list, dir)
		}
		g.dirs[c] = dir
	}
	if err := g.apply(spec); err != nil {
		g.remove()
		return nil, err
	}
	g.openReadFiles()
	return g, nil
}

// openReadFiles opens what Stats and Kill read; a file that cannot be
// opened is read by path.
func (g *Group) openReadFiles() {
	files := []string{filepath.Join(g.list[0], "cgroup.procs")}
	add := func(ctrl string, names ...string) {
		if d := g.dirs[ctrl]; d != "" {
			for _, n := range names {
				files = append(files, filepath.Join(d, n))
			}
		}
	}
	if g.version == 1 {
		add("cpuacct", "cpuacct.usage")
		peak := "memory.memsw.max_usage_in_bytes" // Stats reads memory alone only without it
		if d := g.dirs["memory"]; d != "" && !exists(filepath.Join(d, peak)) {
			peak = "memory.max_usage_in_bytes"
		}
		add("memory", peak, "memory.oom_control")
	} else {
		add("memory", "cpu.stat", "memory.peak", "memory.events")
	}
	add("pids", "pids.peak", "pids.events")
	g.open = map[string]int{}
	for _, f := range files {
		if fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			g.open[f] = fd
		}
	}
}

// closeReadFiles closes the files openReadFiles opened.
func (g *Group) closeReadFiles() {
	g.openMu.Lock()
	defer g.openMu.Unlock()
	for _, fd := range g.open {
		unix.Close(fd)
	}
	g.open = nil
}

// read returns an interface file's content, from its open file when there
// is one (a read from offset 0 makes the kernel produce it afresh).
func (g *Group) read(path string) ([]byte, error) {
	g.openMu.Lock()
	defer g.openMu.Unlock()
	fd, ok := g.open[path]
	if !ok {
		return readSmall(path)
	}
	return readFd(fd, path)
}

// enableV2 turns the wanted controllers on in parent's cgroup.subtree_control.
// The kernel refuses (EBUSY) while the parent has processes of its own; when
// the parent is the broker's own cgroup, move those into a leaf first.
func enableV2(parent string, want []string, own bool) error {
	cur := strings.Fields(readString(filepath.Join(parent, "cgroup.subtree_control")))
	var add []string
	for _, c := range want {
		if !slices.Contains(cur, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	// Only what the parent has: a missing controller then shows as its
	// missing interface files (a limit fails, accounting reads zero).
	avail := strings.Fields(readString(filepath.Join(parent, "cgroup.controllers")))
	add = slices.DeleteFunc(add, func(c string) bool { return !slices.Contains(avail, c[1:]) })
	if len(add) == 0 {
		return nil
	}
	sc := filepath.Join(parent, "cgroup.subtree_control")
	err := writeFile(sc, strings.Join(add, " "))
	if errors.Is(err, unix.EBUSY) && own {
		if lerr := moveToLeaf(parent); lerr != nil {
			return lerr
		}
		err = writeFile(sc, strings.Join(add, " "))
	}
	if err != nil {
		return fmt.Errorf("cgroup v2: cannot enable %s in %s: %w", strings.Join(add, " "), sc, err)
	}
	return nil
}

func moveToLeaf(parent string) error {
	leaf := filepath.Join(parent, leafName)
	if err := mkdir(leaf); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cgroup v2: %s has processes and the leaf for them cannot be created: %w", parent, err)
	}
	pids, err := readPids(filepath.Join(parent, "cgroup.procs"))
	if err != nil {
		return err
	}
	for _, pid := range pids {
		err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(pid))
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("cgroup v2: %s has processes; moving pid %d to %s failed: %w", parent, pid, leaf, err)
		}
	}
	return nil
}

type setting struct {
	ctrl, file, value string
	optional          bool // skipped when the kernel lacks the file
}

func (g *Group) settings(s Spec) []setting {
	var out []setting
	add := func(cond bool, ctrl, file, value string, optional bool) {
		if cond && g.dirs[ctrl] != "" {
			out = append(out, setting{ctrl, file, value, optional})
		}
	}
	mem := strconv.FormatInt(s.Memory, 10)
	if g.version == 1 {
		// memsw must stay >= the memory limit: set the memory limit first.
		add(s.Memory > 0, "memory", "memory.limit_in_bytes", mem, false)
		add(s.Memory > 0, "memory", "memory.memsw.limit_in_bytes", mem, true)
		add(true, "memory", "memory.swappiness", "0", true)
		add(s.Pids > 0, "pids", "pids.max", strconv.FormatInt(s.Pids, 10), false)
		// A new group's period is the kernel's default, cfsPeriod (100 ms).
		add(s.CPUs > 0, "cpu", "cpu.cfs_quota_us", strconv.FormatInt(cpuQuota(s.CPUs), 10), false)
		return out
	}
	add(s.Memory > 0, "memory", "memory.max", mem, false)
	add(s.Memory > 0, "memory", "memory.swap.max", "0", true)
	add(true, "memory", "memory.oom.group", "1", true)
	add(s.Pids > 0, "pids", "pids.max", strconv.FormatInt(s.Pids, 10), false)
	add(s.CPUs > 0, "cpu", "cpu.max", cpuMax(s.CPUs), false)
	return out
}

func (g *Group) apply(s Spec) error {
	for _, st := range g.settings(s) {
		err := writeFile(filepath.Join(g.dirs[st.ctrl], st.file), st.value)
		if st.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cgroup: set %s=%s: %w", st.file, st.value, err)
		}
	}
	return nil
}

// Version is 1 or 2.
func (g *Group) Version() int { return g.version }

// Dirs returns the group's directories (one per v1 hierarchy, one on v2).
func (g *Group) Dirs() []string { return slices.Clone(g.list) }

// Add moves the process pid (all its threads) into the group.
func (g *Group) Add(pid int) error {
	for _, d := range g.list {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("cgroup: add pid %d: %w", pid, err)
		}
	}
	return nil
}

// JoinFiles opens, in each of the group's directories, the file a process
// writes "0" to in order to move itself in: "tasks" on v1, "cgroup.procs"
// on v2. A single-threaded task that moves itself through v1's "tasks"
// skips the kernel's global threadgroup lock, whose RCU grace period makes
// a move by pid cost about 15 ms. The kernel checks the opener's
// credentials, so the files work in a child that has dropped its own. The
// caller closes them.
func (g *Group) JoinFiles() ([]int, error) {
	name := "tasks"
	if g.version == 2 {
		name = "cgroup.procs"
	}
	var fds []int
	for _, d := range g.list {
		fd, err := unix.Open(filepath.Join(d, name), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			for _, f := range fds {
				unix.Close(f)
			}
			return nil, fmt.Errorf("cgroup: open %s: %w", filepath.Join(d, name), err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// FD opens the v2 directory for clone3(CLONE_INTO_CGROUP). The caller closes it.
func (g *Group) FD() (int, error) {
	if g.version != 2 {
		return -1, errors.New("cgroup: CLONE_INTO_CGROUP needs cgroup v2")
	}
	fd, err := unix.Open(g.list[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroup: open %s: %w", g.list[0], err)
	}
	return fd, nil
}

// Stats reads the kernel's accounting. Counters that this kernel does not
// have stay zero.
func (g *Group) Stats() (Stats, error) {
	var s Stats
	var errs []error
	num := func(ctrl, file string) (uint64, bool) {
		d := g.dirs[ctrl]
		if d == "" {
			return 0, false
		}
		v, ok, err := g.readUint(filepath.Join(d, file))
		if err != nil {
			errs = append(errs, err)
		}
		return v, ok
	}
	keyed := func(ctrl, file string) map[string]uint64 {
		d := g.dirs[ctrl]
		if d == "" {
			return nil
		}
		b, err := g.read(filepath.Join(d, file))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		return parseKeyed(string(b))
	}
	if g.version == 1 {
		ns, _ := num("cpuacct", "cpuacct.usage")
		s.CPUTime = time.Duration(ns)
		// Memory plus swap never peaks below memory alone.
		if sw, ok := num("memory", "memory.memsw.max_usage_in_bytes"); ok {
			s.MemoryPeak = sw
		} else {
			s.MemoryPeak, _ = num("memory", "memory.max_usage_in_bytes")
		}
		oc := keyed("memory", "memory.oom_control")
		if n, ok := oc["oom_kill"]; ok {
			s.OOMKilled = n > 0
		} else if f, _ := num("memory", "memory.failcnt"); f > 0 {
			s.OOMKilled = true // old kernels: the limit was hit; the best evidence there is
		}
	} else {
		// cpu.stat is a core file: present even without the cpu controller.
		s.CPUTime = time.Duration(keyed("memory", "cpu.stat")["usage_usec"]) * time.Microsecond
		if p, ok := num("memory", "memory.peak"); ok {
			s.MemoryPeak = p
		} else {
			s.MemoryPeak, _ = num("memory", "memory.current") // a sample, not a peak
		}
		s.OOMKilled = keyed("memory", "memory.events")["oom_kill"] > 0
	}
	if p, ok := num("pids", "pids.peak"); ok {
		s.PidsPeak = int(p)
	}
	s.PidsMaxHit = keyed("pids", "pids.events")["max"] > 0
	return s, errors.Join(errs...)
}

const killTimeout = 5 * time.Second

// Kill SIGKILLs every process in the group and waits until it is empty.
// v2 uses cgroup.kill; otherwise the group is frozen so nothing can fork
// while its pids are read and killed, then thawed so the kills land.
func (g *Group) Kill() error {
	deadline := time.Now().Add(killTimeout)
	if g.version == 2 {
		err := writeFile(filepath.Join(g.list[0], "cgroup.kill"), "1")
		if err == nil && g.waitEmpty(deadline) {
			return nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cgroup: kill: %w", err)
		}
	}
	if g.quietEmpty() {
		g.empty.Store(true) // Close need not look again
		return nil          // already empty: nothing to freeze
	}
	for {
		g.freeze(true, deadline)
		pids, err := g.procs()
		var kerr error
		for _, p := range pids {
			if e := unix.Kill(p, unix.SIGKILL); e != nil && e != unix.ESRCH {
				kerr = e
			}
		}
		g.freeze(false, deadline)
		if err != nil {
			return fmt.Errorf("cgroup: kill: %w", err)
		}
		if len(pids) == 0 || g.waitEmpty(earlier(deadline, time.Now().Add(100*time.Millisecond))) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup: %d processes still in %s after %v (last kill error: %v)", len(pids), g.list[0], killTimeout, kerr)
		}
	}
}

// freeze freezes (or thaws) the group and, when freezing, waits until the
// kernel says it is frozen. Without a freezer it does nothing; Kill then
// simply repeats until the group is empty.
func (g *Group) freeze(on bool, deadline time.Time) {
	file, value, done := "freezer.state", "THAWED", func() bool { return true }
	dir := g.dirs["freezer"]
	if g.version == 2 {
		dir, file, value = g.list[0], "cgroup.freeze", "0"
	}
	if dir == "" {
		return
	}
	if on {
		if g.version == 2 {
			value = "1"
			done = func() bool { return parseKeyed(readString(filepath.Join(dir, "cgroup.events")))["frozen"] == 1 }
		} else {
			value = "FROZEN"
			done = func() bool { return readString(filepath.Join(dir, file)) == "FROZEN" }
		}
	}
	if writeFile(filepath.Join(dir, file), value) != nil {
		return
	}
	// A task stuck in the kernel can delay freezing; do not wait forever.
	until := earlier(deadline, time.Now().Add(time.Second))
	for !done() && time.Now().Before(until) {
		time.Sleep(time.Millisecond)
	}
}

// procs lists every pid in the group and any cgroups below it.
func (g *Group) procs() ([]int, error) {
	var all []int
	for _, d := range g.list {
		err := walkGroups(d, func(dir string) error {
			pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			for _, pid := range pids {
				if !slices.Contains(all, pid) {
					all = append(all, pid)
				}
			}
			return nil
		})
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// quietEmpty reports whether the group has no process, looking in one
// hierarchy: every member joined all of them before it ran anything, its
// children inherit all of them, and nothing inside can move a task.
func (g *Group) quietEmpty() bool {
	empty := true
	err := walkGroups(g.list[0], func(dir string) error {
		b, err := g.read(filepath.Join(dir, "cgroup.procs"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if len(strings.TrimSpace(string(b))) > 0 {
			empty = false
		}
		return nil
	})
	return err == nil && empty
}

// walkGroups calls fn for dir and every cgroup below it. A cgroup
// directory lists dozens of interface files, so it is read only when its
// link count says it has subdirectories.
func walkGroups(dir string, fn func(dir string) error) error {
	if err := fn(dir); err != nil {
		return err
	}
	for _, sub := range subGroups(dir) {
		if err := walkGroups(sub, fn); err != nil {
			return err
		}
	}
	return nil
}

// subGroups lists the cgroups directly below dir (none when it is gone).
func subGroups(dir string) []string {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || st.Nlink == 2 {
		return nil // kernfs (and most filesystems) count subdirectories in nlink
	}
	entries, _ := os.ReadDir(dir)
	var subs []string
	for _, e := range entries {
		if e.IsDir() {
			subs = append(subs, filepath.Join(dir, e.Name()))
		}
	}
	return subs
}

func (g *Group) waitEmpty(until time.Time) bool {
	for {
		pids, err := g.procs()
		if err == nil && len(pids) == 0 {
			return true
		}
		if time.Now().After(until) {
			return false
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// MarkEmpty records that the group is empty and stays so (its members
// are gone and nothing can join it any more), as the caller knows
// first-hand: Kill and Close need not look.
func (g *Group) MarkEmpty() { g.empty.Store(true) }

// Empty reports whether the group is known to be empty for good.
func (g *Group) Empty() bool { return g.empty.Load() }

// Close kills everything in the group and removes its directories.
func (g *Group) Close() error {
	if g.closed {
		return nil
	}
	var kerr error
	if !g.empty.Load() {
		kerr = g.Kill()
	}
	g.closeReadFiles()
	rerr := g.remove()
	if kerr == nil && rerr == nil {
		g.closed = true
	}
	return errors.Join(kerr, rerr)
}

// remove deletes the group's directories, deepest first; a cgroup that just
// emptied can stay busy for a moment, so EBUSY is retried briefly.
func (g *Group) remove() error {
	var errs []error
	for i := len(g.list) - 1; i >= 0; i-- {
		if err := rmTree(g.list[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func rmTree(dir string) error {
	for _, sub := range subGroups(dir) {
		if err := rmTree(sub); err != nil {
			return err
		}
	}
	until := time.Now().Add(time.Second)
	wait := 50 * time.Microsecond
	for {
		err := unix.Rmdir(dir)
		switch {
		case err == nil || err == unix.ENOENT:
			return nil
		case err == unix.EBUSY && time.Now().Before(until):
			time.Sleep(wait)
			wait = min(2*wait, 5*time.Millisecond)
		default:
			return fmt.Errorf("cgroup: rmdir %s: %w", dir, err)
		}
	}
}

// CleanStale removes airlock-<pid>-* groups below the broker's cgroup whose
// broker is dead (a SIGKILLed broker cannot clean up), killing what is left
// inside first. A reused pid only delays the cleanup.
func CleanStale() ([]string, error) {
	_, l := detectHost()
	return cleanStale(l)
}

func cleanStale(l layout) ([]string, error) {
	return removeGroups(l, func(pid int) bool { return !pidAlive(pid) })
}

// removeGroups kills and removes the airlock-<pid>-* groups below the
// layout's directories whose broker pid matches.
func removeGroups(l layout, match func(pid int) bool) ([]string, error) {
	stale := map[string]*Group{}
	var names []string
	for _, c := range v1Controllers {
		parent := l.dirs[c]
		if parent == "" {
			continue
		}
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			pid, ok := parseGroupName(e.Name())
			if !e.IsDir() || !ok || !match(pid) {
				continue
			}
			g := stale[e.Name()]
			if g == nil {
				g = &Group{version: l.version, dirs: map[string]string{}}
				stale[e.Name()] = g
				names = append(names, e.Name())
			}
			dir := filepath.Join(parent, e.Name())
			g.dirs[c] = dir
			if !slices.Contains(g.list, dir) {
				g.list = append(g.list, dir)
			}
		}
	}
	var removed []string
	var errs []error
	for _, n := range names {
		g := stale[n]
		if err := g.Close(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, g.list...)
	}
	return removed, errors.Join(errs...)
}

func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// writeFile writes one value to an existing cgroup file; a variable so
// tests can emulate kernel rules on a fake tree.
var writeFile = writeCgroupFile

func writeCgroupFile(path, value string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	_, err = unix.Write(fd, []byte(value))
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// readSmall reads a cgroup interface file with plain system calls: these
// files are small, and os.ReadFile's stat and poller set-up cost more than
// the read.
func readSmall(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return readFd(fd, path)
}

// readFd reads fd whole from offset 0 (path names it in errors).
func readFd(fd int, path string) ([]byte, error) {
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Pread(fd, buf, int64(len(b)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = append(b, buf[:n]...)
	}
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func readString(path string) string {
	b, _ := readSmall(path)
	return strings.TrimSpace(string(b))
}

// readUint reads a one-number file; ok is false when it does not exist.
func (g *Group) readUint(path string) (uint64, bool, error) {
	b, err := g.read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("cgroup: %s: %w", path, err)
	}
	return v, true, nil
}

func readPids(path string) ([]int, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
