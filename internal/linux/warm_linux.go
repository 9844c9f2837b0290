package linux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock/internal/cgroup"
	"github.com/airlock-sandbox/airlock/internal/landlock"
)

// Warm sandboxes: a sandbox is set up ahead (namespaces, mounts, identity,
// capabilities dropped, Landlock) and its init waits for a run. The broker
// then writes the run's command line, environment, working directory and
// limits straight into the init's memory (same addresses: it is a fork of
// the broker) and sends stdio over a socket; the init forks the target as
// usual. Set-up leaves the critical path; the namespaces are still used once.

const (
	maxExec  = 32 // PATH candidates
	maxRlim  = 12
	reqBytes = 256 << 10
	// maxJoin is how many cgroup files come with a run (one per v1
	// hierarchy); unused places carry /dev/null.
	maxJoin = 6
)

// requestBlock is the memory the broker fills for one run.
type requestBlock struct {
	cwd, argv, envv uintptr
	exe             [maxExec]uintptr
	rlim            [maxRlim]struct {
		res uintptr
		lim unix.Rlimit
	}
	data [reqBytes]byte
}

// request is the broker's handle on a warm sandbox's run channel.
type request struct {
	blk        *requestBlock
	ctlR, ctlW int // socketpair: the init receives stdio on ctlR
	msg        *unix.Msghdr
	cbuf       []byte // the run's fds: stdio, then maxJoin cgroup files
	ind        [][6]*uintptr
	used       bool
}

func newRequest() (*request, error) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	rq := &request{blk: blocks.Get().(*requestBlock), ctlR: highFd(sp[0]), ctlW: highFd(sp[1])}
	if err := unix.SetsockoptInt(rq.ctlW, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		rq.close()
		return nil, err
	}
	buf := make([]byte, 1)
	cbuf := make([]byte, unix.CmsgSpace((3+maxJoin)*4))
	// A run that brings fewer fds leaves -1 behind: EBADF, not fd 0.
	for i := unix.CmsgLen(0); i < len(cbuf); i++ {
		cbuf[i] = 0xff
	}
	iov := &unix.Iovec{Base: &buf[0]}
	iov.SetLen(1)
	rq.msg = &unix.Msghdr{Iov: iov, Iovlen: 1, Control: &cbuf[0]}
	rq.msg.SetControllen(len(cbuf))
	rq.cbuf = cbuf
	return rq, nil
}

// readyPid waits for the target's ready byte and returns the sender's pid
// in the broker's pid namespace.
func (rq *request) readyPid() (int, error) {
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, _, _, err := unix.Recvmsg(rq.ctlW, b[:], oob, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n != 1 {
			return 0, errors.New("closed")
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return 0, errors.New("no credentials with the ready byte")
		}
		cred, err := unix.ParseUnixCredentials(&msgs[0])
		if err != nil || cred.Pid <= 0 {
			return 0, errors.New("no pid with the ready byte")
		}
		return int(cred.Pid), nil
	}
}

func (rq *request) close() {
	for _, fd := range []*int{&rq.ctlR, &rq.ctlW} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if rq.blk != nil {
		blocks.Put(rq.blk)
		rq.blk = nil
	}
}

// blocks recycles run blocks (256 KiB each): once a run is sent or its
// sandbox discarded, the broker's copy is only a buffer. The sandbox reads
// its own copy, at the same address, which the fork made.
var blocks = sync.Pool{New: func() any { return new(requestBlock) }}

// indirect returns an ind array for an op.
func (rq *request) indirect(pairs ...any) *[6]*uintptr {
	var ind [6]*uintptr
	for i := 0; i < len(pairs); i += 2 {
		ind[pairs[i].(int)] = pairs[i+1].(*uintptr)
	}
	rq.ind = append(rq.ind, ind)
	return &rq.ind[len(rq.ind)-1]
}

// waitOps: the target, forked ahead, drops stdio, blocks until the run
// arrives (its stdio lands on fds 0..2), then applies the run's directory
// and limits.
func (rq *request) waitOps(p *program) {
	rq.ind = make([][6]*uintptr, 0, 1+maxRlim+maxExec+2*maxJoin)
	p.keep = append(p.keep, rq)
	for fd := 0; fd < 3; fd++ {
		p.sys("wait for run", unix.SYS_CLOSE, uintptr(fd)).flags = fIgnoreErr
	}
	// Tell the broker this sandbox is ready, then wait for the run.
	ready := []byte{'r'}
	p.keep = append(p.keep, ready)
	p.sys("wait for run", unix.SYS_WRITE, uintptr(rq.ctlR), uintptr(unsafe.Pointer(&ready[0])), 1)
	p.sys("wait for run", unix.SYS_RECVMSG, uintptr(rq.ctlR), uintptr(unsafe.Pointer(rq.msg)), 0).flags = fMustRead1
	p.sys("wait for run", unix.SYS_CLOSE, uintptr(rq.ctlR))
	p.sys("wait for run", unix.SYS_CLOSE, uintptr(rq.ctlW))
	// Into the run's cgroup, by the target itself (see cgroup.JoinFiles).
	zero := p.str("0")
	for i := range maxJoin {
		fd := (*uintptr)(unsafe.Pointer(&rq.cbuf[unix.CmsgLen(0)+4*(3+i)]))
		o := p.sys("cgroup", unix.SYS_WRITE, 0, zero, 1)
		o.ind, o.flags = rq.indirect(0, fd), fInd32
		o = p.sys("cgroup", unix.SYS_CLOSE, 0)
		o.ind, o.flags = rq.indirect(0, fd), fInd32
	}
	p.sys("chdir", unix.SYS_CHDIR, 0).ind = rq.indirect(0, &rq.blk.cwd)
	for i := range rq.blk.rlim {
		r := &rq.blk.rlim[i]
		p.sys("rlimit", unix.SYS_PRLIMIT64, 0, 0, uintptr(unsafe.Pointer(&r.lim)), 0).ind = rq.indirect(1, &r.res)
	}
}

// execOps tries each PATH candidate the broker wrote.
func (rq *request) execOps(p *program) {
	for i := range rq.blk.exe {
		o := p.sys("exec", unix.SYS_EXECVE, 0, 0, 0)
		o.ind = rq.indirect(0, &rq.blk.exe[i], 1, &rq.blk.argv, 2, &rq.blk.envv)
		o.flags = fExecSearch
		if i == maxExec-1 {
			o.flags |= fExecLast
		}
	}
}

// fill writes spec's run into the block, with pointers valid in the init.
func (rq *request) fill(spec *Spec) (int, error) {
	b := rq.blk
	off := 0
	put := func(s string) (uintptr, error) {
		if off+len(s)+1 > len(b.data) {
			return 0, errors.New("command line and environment too large for a warm sandbox")
		}
		p := uintptr(unsafe.Pointer(&b.data[off]))
		copy(b.data[off:], s)
		b.data[off+len(s)] = 0
		off += len(s) + 1
		return p, nil
	}
	vec := func(ss []string) (uintptr, error) {
		off = (off + 7) &^ 7
		n := (len(ss) + 1) * 8
		if off+n > len(b.data) {
			return 0, errors.New("command line and environment too large for a warm sandbox")
		}
		at := off
		off += n
		for i, s := range ss {
			p, err := put(s)
			if err != nil {
				return 0, err
			}
			binary.NativeEndian.PutUint64(b.data[at+8*i:], uint64(p))
		}
		binary.NativeEndian.PutUint64(b.data[at+8*len(ss):], 0)
		return uintptr(unsafe.Pointer(&b.data[at])), nil
	}
	var err error
	if b.cwd, err = put(spec.Dir); err != nil {
		return 0, err
	}
	if b.argv, err = vec(spec.Args); err != nil {
		return 0, err
	}
	if b.envv, err = vec(spec.Env); err != nil {
		return 0, err
	}
	cands := execCandidates(spec)
	if len(cands) > maxExec {
		cands = cands[:maxExec]
	}
	for i := range b.exe {
		c := cands[len(cands)-1]
		if i < len(cands) {
			c = cands[i]
		}
		if b.exe[i], err = put(c); err != nil {
			return 0, err
		}
	}
	if len(spec.Rlimits) > maxRlim {
		return 0, errors.New("too many rlimits for a warm sandbox")
	}
	for i := range b.rlim {
		rl := Rlimit{Resource: unix.RLIMIT_CORE}
		if i < len(spec.Rlimits) {
			rl = spec.Rlimits[i]
		}
		b.rlim[i].res = uintptr(rl.Resource)
		b.rlim[i].lim = unix.Rlimit{Cur: rl.Cur, Max: rl.Max}
	}
	// Only the header and the used part of data need copying.
	return int(unsafe.Offsetof(b.data)) + off, nil
}

// execCandidates lists where execvp would look for spec.Path inside.
func execCandidates(spec *Spec) []string {
	if strings.Contains(spec.Path, "/") {
		return []string{spec.Path}
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	var cands []string
	for _, dir := range filepath.SplitList(path) {
		if filepath.IsAbs(dir) {
			cands = append(cands, filepath.Join(dir, spec.Path))
		}
	}
	if len(cands) == 0 {
		cands = []string{"/" + spec.Path}
	}
	return cands
}

// warm is one sandbox waiting for a run.
type warm struct {
	pl    *plan
	proc  *Process
	cg    *cgroup.Group
	born  time.Time
	shape shape
	id    uint64
	ttl   *time.Timer
}

// discard kills a warm sandbox that will not be used.
func (w *warm) discard() {
	w.pl.rq.close()
	unix.Close(w.pl.errR)
	if w.pl.notifyR >= 0 {
		unix.Close(w.pl.notifyR)
	}
	w.proc.Kill()
	w.proc.Wait()
	if w.cg != nil {
		w.cg.Close()
	}
}

// The stage names of a warm plan's failures come from its own program.

// pool keeps at most one warm sandbox per policy shape, made once a shape
// has been used twice, and dropped after warmTTL unused.
var pool struct {
	mu    sync.Mutex
	idle  map[uint64]*warm
	uses  map[uint64]int
	start map[uint64]bool
	seq   uint64
}

const warmTTL = 10 * time.Second

// shape is what a warm sandbox was built for; runs that differ only in
// command, environment, directory, stdio or limits share it. Computing and
// comparing one allocates nothing: it runs on every launch.
type shape struct {
	spec Spec   // the shaping fields only (see same)
	key  uint64 // their hash, for the pool's maps
}

var shapeSeed = maphash.MakeSeed()

func shapeOf(spec *Spec) shape {
	sh := shape{spec: Spec{Hostname: spec.Hostname, ShareNet: spec.ShareNet, HostUID: spec.HostUID, HostGID: spec.HostGID,
		SeccompNotify: spec.SeccompNotify, Mounts: spec.Mounts, Seccomp: spec.Seccomp, Landlock: spec.Landlock,
		Cgroup: spec.Cgroup}}
	var h maphash.Hash
	h.SetSeed(shapeSeed)
	var n [8]byte
	num := func(v int64) {
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	flag := func(b bool) {
		if b {
			num(1)
		} else {
			num(0)
		}
	}
	str := func(s string) {
		num(int64(len(s)))
		h.WriteString(s)
	}
	str(spec.Hostname)
	flag(spec.ShareNet)
	// The group's limits too: a warm sandbox is made inside its group.
	flag(spec.Cgroup != nil)
	if c := spec.Cgroup; c != nil {
		str(c.Parent)
		num(c.Memory)
		num(c.Pids)
		num(int64(math.Float64bits(c.CPUs)))
		flag(c.Minimal)
		flag(c.CPUAccounting)
	}
	flag(spec.SeccompNotify)
	num(int64(spec.HostUID))
	num(int64(spec.HostGID))
	for _, m := range spec.Mounts {
		num(int64(m.Kind))
		str(m.Source)
		str(m.Dest)
		flag(m.Writable)
		num(m.Size)
		num(int64(len(m.Data)))
		h.Write(m.Data)
	}
	num(int64(len(spec.Seccomp)))
	if len(spec.Seccomp) > 0 {
		h.Write(unsafe.Slice((*byte)(unsafe.Pointer(&spec.Seccomp[0])), len(spec.Seccomp)*int(unsafe.Sizeof(spec.Seccomp[0]))))
	}
	if rs := ruleset(spec); rs != nil {
		num(int64(rs.ABI))
		num(int64(rs.HandledFS))
		for _, r := range rs.Paths {
			str(r.Path)
			num(int64(r.Access))
		}
		num(int64(len(rs.Ports)))
	}
	sh.key = h.Sum64()
	return sh
}

func ruleset(spec *Spec) *landlock.Ruleset {
	if spec.Landlock == nil {
		return nil
	}
	return spec.Landlock.Ruleset()
}

// same reports whether two shapes are equal field for field and byte for
// byte: a warm sandbox is used only for exactly the shape it was built for.
func (sh shape) same(o shape) bool {
	a, b := &sh.spec, &o.spec
	if a.Hostname != b.Hostname || a.ShareNet != b.ShareNet || a.SeccompNotify != b.SeccompNotify ||
		a.HostUID != b.HostUID || a.HostGID != b.HostGID || len(a.Mounts) != len(b.Mounts) || !slices.Equal(a.Seccomp, b.Seccomp) {
		return false
	}
	if (a.Cgroup == nil) != (b.Cgroup == nil) || a.Cgroup != nil && *a.Cgroup != *b.Cgroup {
		return false
	}
	for i := range a.Mounts {
		m, n := &a.Mounts[i], &b.Mounts[i]
		if m.Kind != n.Kind || m.Source != n.Source || m.Dest != n.Dest || m.Writable != n.Writable || m.Size != n.Size || !bytes.Equal(m.Data, n.Data) {
			return false
		}
	}
	ra, rb := ruleset(a), ruleset(b)
	if (ra == nil) != (rb == nil) {
		return false
	}
	return ra == nil || ra.Equal(rb)
}

// retained copies what the shape shares with the caller (file contents,
// the filter), which the caller may reuse for other runs.
func (sh shape) retained() shape {
	c := sh
	c.spec.Mounts = slices.Clone(sh.spec.Mounts)
	for i := range c.spec.Mounts {
		c.spec.Mounts[i].Data = bytes.Clone(c.spec.Mounts[i].Data)
	}
	c.spec.Seccomp = slices.Clone(sh.spec.Seccomp)
	if sh.spec.Cgroup != nil {
		cg := *sh.spec.Cgroup
		c.spec.Cgroup = &cg
	}
	return c
}

// takeWarm returns a warm sandbox for spec, or nil; and, when this shape is
// used repeatedly, a function that makes the next one (to call once this
// run has ended, so the two do not compete).
func takeWarm(spec *Spec) (*warm, func()) {
	// A terminal is made by the target at launch; interactive runs gain
	// nothing from a sandbox made ahead.
	if !spec.Warm || spec.Terminal != nil {
		return nil, nil
	}
	sh := shapeOf(spec)
	key := sh.key
	pool.mu.Lock()
	if pool.idle == nil {
		pool.idle, pool.uses, pool.start = map[uint64]*warm{}, map[uint64]int{}, map[uint64]bool{}
	}
	w := pool.idle[key]
	if w != nil && !w.shape.same(sh) {
		w = nil // a hash collision: leave it for its own shape
	} else if w != nil {
		delete(pool.idle, key)
		w.ttl.Stop()
	}
	pool.uses[key]++
	refill := pool.uses[key] >= 2 && !pool.start[key]
	if refill {
		pool.start[key] = true
	}
	pool.mu.Unlock()
	if w != nil && time.Since(w.born) > warmTTL {
		go w.discard()
		w = nil
	}
	var next func()
	if refill {
		// The next sandbox is built from a private copy of the shape (the
		// one just taken holds one), taken now: once Start returns, the
		// caller may reuse its buffers.
		kept := sh
		if w != nil {
			kept = w.shape
		} else {
			kept = sh.retained()
		}
		cp := *spec
		cp.Mounts, cp.Seccomp, cp.Cgroup = kept.spec.Mounts, kept.spec.Seccomp, kept.spec.Cgroup
		next = func() { go makeWarm(kept, &cp) }
	}
	return w, next
}

func makeWarm(sh shape, spec *Spec) {
	key := sh.key
	defer func() {
		pool.mu.Lock()
		pool.start[key] = false
		pool.mu.Unlock()
	}()
	rq, err := newRequest()
	if err != nil {
		return
	}
	// The sandbox is made in its run's group where a janitor removes the
	// group should the broker end first; elsewhere the run makes it. The
	// group is made beside the plan, which writes to maxJoin stand-in fds
	// (/dev/null) that the group's files replace before the fork.
	var (
		g     *cgroup.Group
		join  []int
		slots []int
		made  chan struct{}
	)
	if spec.Cgroup != nil && spec.Cgroup.Parent == "" {
		made = make(chan struct{})
		go func() {
			defer close(made)
			if !cgroup.StartJanitor() {
				return
			}
			ng, err := cgroup.New(*spec.Cgroup)
			if err != nil {
				return
			}
			fds, err := joinFiles(ng)
			if err != nil || len(fds) > maxJoin {
				closeFds(fds)
				ng.Close()
				return
			}
			g, join = ng, fds
		}()
		for range maxJoin {
			fd, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				break
			}
			slots = append(slots, highFd(fd))
		}
	}
	defer closeFds(slots)
	pl, err := buildPlan(spec, rq, slots)
	if made != nil {
		<-made
		for i, fd := range join {
			if i >= len(slots) || unix.Dup3(fd, slots[i], unix.O_CLOEXEC) != nil {
				g.Close()
				g = nil
				break
			}
		}
		closeFds(join)
	}
	if err != nil {
		rq.close()
		if g != nil {
			g.Close()
		}
		return
	}
	proc, err := pl.fork()
	if err != nil {
		rq.close()
		if g != nil {
			g.Close()
		}
		return
	}
	w := &warm{pl: pl, proc: proc, cg: g, born: time.Now(), shape: sh}
	if err := pl.writeMaps(proc.Pid); err != nil {
		w.discard()
		return
	}
	if _, err := unix.Write(pl.syncW, []byte{1}); err != nil {
		w.discard()
		return
	}
	unix.Close(pl.syncW)
	pool.mu.Lock()
	old := pool.idle[key]
	pool.idle[key] = w
	pool.seq++
	w.id = pool.seq
	// The timer holds only the key and the number: a sandbox's memory (its
	// plan and run block) must not outlive its use.
	id := w.id
	w.ttl = time.AfterFunc(warmTTL, func() { expire(key, id) })
	pool.mu.Unlock()
	if old != nil {
		old.discard()
	}
}

// expire discards the idle sandbox key if it is still number id.
func expire(key, id uint64) {
	pool.mu.Lock()
	w := pool.idle[key]
	if w != nil && w.id == id {
		delete(pool.idle, key)
	} else {
		w = nil
	}
	pool.mu.Unlock()
	if w != nil {
		w.discard()
	}
}

// run hands spec's run to a warm sandbox.
func (w *warm) run(spec *Spec, hooks Hooks, pg *pendingGroup) (*Process, error) {
	pl, proc := w.pl, w.proc
	// A sandbox still being set up is waited for: that is less work than
	// a new one. The target says when it is ready.
	// The target was forked ahead: the run goes into its memory. Its ready
	// byte carries its pid, translated by the kernel (SO_PASSCRED).
	target, err := pl.rq.readyPid()
	if err != nil {
		w.discard()
		return nil, fmt.Errorf("warm sandbox failed before the run (%v)", err)
	}
	// Without a janitor the group is made for the run, not with the
	// sandbox (a broker that exits without discarding it would leave the
	// group behind), and the target moves itself in when the run arrives.
	join, owned, err := w.joinFiles(pg)
	if err != nil {
		w.discard()
		return nil, &StageError{Stage: "cgroup", Err: err}
	}
	defer closeFds(owned)
	if hooks.BeforeRelease != nil {
		if err := hooks.BeforeRelease(target); err != nil {
			w.discard()
			return nil, err
		}
	}
	size, err := pl.rq.fill(spec)
	if err != nil {
		w.discard()
		return nil, err
	}
	local := []unix.Iovec{{Base: (*byte)(unsafe.Pointer(pl.rq.blk))}}
	local[0].SetLen(size)
	remote := []unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(pl.rq.blk)), Len: size}}
	if n, err := unix.ProcessVMWritev(target, local, remote, 0); err != nil || n != size {
		w.discard()
		return nil, fmt.Errorf("write run into warm sandbox: %v", err)
	}
	rights := unix.UnixRights(append(spec.Stdio[:], join...)...)
	if err := unix.Sendmsg(pl.rq.ctlW, []byte{1}, rights, nil, 0); err != nil {
		w.discard()
		return nil, fmt.Errorf("send stdio to warm sandbox: %v", err)
	}
	pl.rq.close()
	p, err := pl.finishStart(proc)
	if err != nil {
		if w.cg != nil {
			w.cg.Close()
		}
		return nil, err
	}
	p.Cgroup = w.cg
	return p, nil
}

// joinFiles makes the run's cgroup, if any, and returns the maxJoin fds the
// target writes "0" to (the group's files, then /dev/null repeated) and the
// fds to close once they are sent.
func (w *warm) joinFiles(pg *pendingGroup) (join, owned []int, err error) {
	made := w.cg != nil // made with the sandbox, which is in it already
	if !made {
		if w.cg, err = pg.take(); err != nil {
			return nil, nil, err
		}
	}
	if w.cg != nil && !made {
		if owned, err = joinFiles(w.cg); err != nil {
			return nil, nil, err
		}
		if len(owned) > maxJoin {
			closeFds(owned)
			return nil, nil, fmt.Errorf("%d cgroup hierarchies; a warm sandbox joins at most %d", len(owned), maxJoin)
		}
	}
	join = owned
	if len(join) < maxJoin {
		null, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeFds(owned)
			return nil, nil, err
		}
		owned = append(owned, null)
		join = slices.Clone(join)
		for len(join) < maxJoin {
			join = append(join, null)
		}
	}
	return join, owned, nil
}

var errNoWarm = errors.New("no warm sandbox")
