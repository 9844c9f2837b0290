package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newRoot is where the sandbox's root tmpfs is built before pivot_root. The
// mount namespace is private, so the host's /tmp is untouched; bind sources
// are opened before it is covered.
const newRoot = "/tmp"

// maskedProcFiles hide kernel data a sandbox has no use for (THREATS B1).
// Only files a user may read need masking: the root-only ones (kcore, kmsg,
// sched_debug, ...) are already closed to the sandbox user.
var maskedProcFiles = []string{"keys", "key-users", "kallsyms", "interrupts", "softirqs", "config.gz",
	"latency_stats", "timer_list", "sysrq-trigger"}

var maskedProcDirs = []string{"acpi", "scsi", "asound", "irq", "bus", "driver", "pressure"}

var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// plan is a compiled launch: the child's program plus what the parent
// needs to drive it.
type plan struct {
	prog             program
	flags            uintptr
	uidMap, gidMap   string
	setgroups        string
	syncR, syncW     int
	errR, errW       int
	statusR, statusW int
	notifyR, notifyW int // socketpair for the seccomp listener
	ptyR, ptyW       int // socketpair for the terminal's master
	rq               *request
	uid, gid         int
}

// hostFacts are looked up once per broker process.
type hostFacts struct {
	lastCap    int
	openTreeOK bool
}

// facts are read once per broker, safely from any goroutine.
var facts = sync.OnceValue(func() hostFacts {
	h := hostFacts{lastCap: 40}
	// A plain read: os.ReadFile's poller set-up costs more than the file.
	if fd, err := unix.Open("/proc/sys/kernel/cap_last_cap", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		var b [16]byte
		n, _ := readFull(fd, b[:])
		unix.Close(fd)
		if v, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil {
			h.lastCap = v
		}
	}
	// Called with bad arguments, they fail with ENOSYS only when the
	// kernel lacks them (open_tree 5.2, mount_setattr 5.12).
	_, _, e1 := syscall.RawSyscall(unix.SYS_OPEN_TREE, ^uintptr(0), 0, 0)
	_, _, e2 := syscall.RawSyscall6(unix.SYS_MOUNT_SETATTR, ^uintptr(0), 0, 0, 0, 0, 0)
	h.openTreeOK = e1 != syscall.ENOSYS && e2 != syscall.ENOSYS
	return h
})

// buildPlan compiles spec into a child program.
//
// With rq, the plan is for a warm sandbox: everything that does not depend
// on the run is done ahead, then the init waits on rq's socket for the run
// (stdio, working directory, limits, command), which the broker writes into
// rq's block.
//
// join are the cgroup files (cgroup.Group.JoinFiles) the target moves
// itself in with, first thing once forked; they must be above stdio (the
// init's stdio lands on 0..2 before the fork).
func buildPlan(spec *Spec, rq *request, join []int) (*plan, error) {
	pl := &plan{uid: os.Getuid(), gid: os.Getgid(), rq: rq}
	p := &pl.prog
	// Room for a default sandbox's ops: growing the list by doubling made
	// a third of a launch's garbage.
	p.ops = make([]op, 0, 320+8*len(spec.Mounts))
	hf := facts()

	pl.flags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP
	if !spec.ShareNet {
		pl.flags |= unix.CLONE_NEWNET
	}

	// Identity: the sandbox user is never host root.
	inUID, inGID := pl.uid, pl.gid
	root := os.Geteuid() == 0
	if root {
		inUID, inGID = spec.HostUID, spec.HostGID
		if inUID <= 0 {
			inUID = 65534
		}
		if inGID <= 0 {
			inGID = 65534
		}
		pl.setgroups = "allow"
	} else {
		pl.setgroups = "deny"
	}
	pl.uidMap = fmt.Sprintf("%d %d 1\n", inUID, inUID)
	pl.gidMap = fmt.Sprintf("%d %d 1\n", inGID, inGID)
	if !root {
		pl.uidMap = fmt.Sprintf("%d %d 1\n", pl.uid, pl.uid)
		pl.gidMap = fmt.Sprintf("%d %d 1\n", pl.gid, pl.gid)
	}
	pl.uid, pl.gid = inUID, inGID

	var err error
	if err = pl.pipes(); err != nil {
		return nil, err
	}
	pl.notifyR, pl.notifyW, pl.ptyR, pl.ptyW = -1, -1, -1, -1
	if rq != nil && spec.Terminal != nil {
		pl.closeAll()
		return nil, errors.New("a warm sandbox cannot make a terminal")
	}
	for _, pair := range []struct {
		want bool
		r, w *int
	}{{spec.SeccompNotify, &pl.notifyR, &pl.notifyW}, {spec.Terminal != nil, &pl.ptyR, &pl.ptyW}} {
		if !pair.want {
			continue
		}
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			pl.closeAll()
			return nil, err
		}
		*pair.r, *pair.w = highFd(sp[0]), highFd(sp[1])
	}

	// 1. Wait for the id maps; die with the broker.
	p.sys("parent-death signal", unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL))
	p.sys("sync with broker", unix.SYS_CLOSE, uintptr(pl.syncW))
	var b [8]byte
	p.keep = append(p.keep, &b)
	p.sys("sync with broker", unix.SYS_READ, uintptr(pl.syncR), uintptr(unsafe.Pointer(&b[0])), 1).flags = fMustRead1
	p.sys("sync with broker", unix.SYS_CLOSE, uintptr(pl.syncR))
	// Drop every fd the broker had open at the fork (other runs' pipes
	// among them) but the ones this child uses.
	keep := append([]int{pl.errW, pl.statusW, pl.notifyW, pl.ptyW}, join...)
	if rq != nil {
		keep = append(keep, rq.ctlR, rq.ctlW)
	} else {
		keep = append(keep, spec.Stdio[:]...)
	}
	pl.closeAllBut(keep)
	p.sys("setsid", unix.SYS_SETSID)
	p.sys("dumpable", unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0)

	// 2. stdio onto 0..2 via fds above everything in use.
	if rq == nil {
		base := pl.maxFd() + 1
		for _, fd := range append(spec.Stdio[:], join...) {
			base = max(base, fd+1) // dup3 onto itself is EINVAL; join must survive
		}
		for i, fd := range spec.Stdio {
			p.sys("stdio", unix.SYS_DUP3, uintptr(fd), uintptr(base+i), unix.O_CLOEXEC)
		}
		for i := range spec.Stdio {
			p.sys("stdio", unix.SYS_DUP3, uintptr(base+i), uintptr(i), 0)
		}
	}

	// 3. Network: loopback up in the new namespace.
	if !spec.ShareNet {
		s := p.slot()
		p.sys("loopback up", unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0).out = s
		var ifr [40]byte
		copy(ifr[:], "lo")
		*(*uint16)(unsafe.Pointer(&ifr[16])) = unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING
		o := p.sys("loopback up", unix.SYS_IOCTL, 0, unix.SIOCSIFFLAGS, p.bytes(ifr[:]))
		o.in, o.inArg = s, 0
		o = p.sys("loopback up", unix.SYS_CLOSE, 0)
		o.in, o.inArg = s, 0
	}

	// 4. Filesystem.
	identity := func() {
		if root {
			p.sys("setgroups", unix.SYS_SETGROUPS, 0, 0)
		}
		p.sys("setresgid", unix.SYS_SETRESGID, uintptr(inGID), uintptr(inGID), uintptr(inGID))
		p.sys("setresuid", unix.SYS_SETRESUID, uintptr(inUID), uintptr(inUID), uintptr(inUID))
		// Changing credentials cleared the parent-death signal: set it again.
		p.sys("parent-death signal", unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL))
	}
	if err = pl.mounts(spec, hf, identity); err != nil {
		pl.closeAll()
		return nil, err
	}

	// 5. Hostname, working directory, limits.
	if spec.Hostname != "" {
		p.sys("hostname", unix.SYS_SETHOSTNAME, p.str(spec.Hostname), uintptr(len(spec.Hostname)))
	}
	if rq == nil {
		pl.runOps(spec)
	}

	// 6. Capabilities: bounding set, securebits, ambient, then all sets.
	for c := 0; c <= hf.lastCap; c++ {
		p.sys("drop capabilities", unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c))
	}
	// SECBIT_NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED and the NOROOT and
	// NO_SETUID_FIXUP locks: uid 0 inside can never regain capabilities.
	p.sys("securebits", unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, 0x01|0x02|0x04|0x08|0x20)
	p.sys("drop capabilities", unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := &[2]unix.CapUserData{}
	p.keep = append(p.keep, hdr, data)
	p.sys("drop capabilities", unix.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0])))
	p.sys("no_new_privs", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	if spec.Landlock != nil {
		if err := p.addLandlock(spec.Landlock); err != nil {
			pl.closeAll()
			return nil, err
		}
	}

	// 7. Fork the target; this process stays as the sandbox's init. A warm
	// sandbox forks it ahead too, and the target waits for its run.
	gpid := p.slot()
	forkAt := len(p.ops)
	p.ops = append(p.ops, op{kind: kFork, in: -1, inArg: -1, out: gpid, stage: p.stageIndex("fork target")})
	// The target joins the group before anything else; the init never
	// does: a group holding the init would empty only after the
	// namespaces' teardown, and the sandbox's set-up is not the run's.
	for _, fd := range join {
		p.sys("cgroup", unix.SYS_WRITE, uintptr(fd), p.str("0"), 1)
		p.sys("cgroup", unix.SYS_CLOSE, uintptr(fd))
	}
	if rq != nil {
		rq.waitOps(p)
	}
	// 8. Close every fd but stdio at exec (also fds the broker inherited).
	p.ops = append(p.ops, op{kind: kCloexecFrom, args: [6]uintptr{3, 65536}, in: -1, inArg: -1, out: -1, stage: p.stageIndex("close inherited fds")})
	p.sys("setsid", unix.SYS_SETSID)
	if spec.Terminal != nil {
		pl.terminalOps(spec.Terminal)
	}
	// Seccomp last, in the target only: the init must still fork and reap.
	if len(spec.Seccomp) > 0 {
		p.addSeccomp(spec.Seccomp, spec.SeccompNotify, pl.notifyW)
	}
	if rq != nil {
		rq.execOps(p)
	} else {
		pl.execOps(spec)
	}
	initAt := len(p.ops)
	p.ops[forkAt].args[0] = uintptr(initAt)
	// The init keeps only the status pipe.
	pl.closeAllBut([]int{pl.statusW})
	p.ops = append(p.ops, op{kind: kReap, args: [6]uintptr{uintptr(gpid), uintptr(pl.statusW)}, in: -1, inArg: -1, out: -1, stage: p.stageIndex("init")})
	if int(p.nslots) > maxSlots {
		pl.closeAll()
		return nil, fmt.Errorf("policy needs %d open files during setup; at most %d are supported", p.nslots, maxSlots)
	}
	return pl, nil
}

const maxSlots = 128

// closeAllBut closes every fd except keep, with close_range over the gaps.
func (pl *plan) closeAllBut(keep []int) {
	sort.Ints(keep)
	from := 0
	for _, k := range keep {
		if k < 0 {
			continue
		}
		if k > from {
			pl.prog.sys("close fds", unix.SYS_CLOSE_RANGE, uintptr(from), uintptr(k-1), 0)
		}
		from = k + 1
	}
	pl.prog.sys("close fds", unix.SYS_CLOSE_RANGE, uintptr(from), ^uintptr(0)>>32, 0)
}

// runOps sets what each run chooses: working directory and limits.
func (pl *plan) runOps(spec *Spec) {
	p := &pl.prog
	p.sys("chdir "+spec.Dir, unix.SYS_CHDIR, p.str(spec.Dir))
	for _, rl := range spec.Rlimits {
		lim := &unix.Rlimit{Cur: rl.Cur, Max: rl.Max}
		p.keep = append(p.keep, lim)
		p.sys("set "+rlimitName(rl.Resource), unix.SYS_PRLIMIT64, 0, uintptr(rl.Resource), uintptr(unsafe.Pointer(lim)), 0)
	}
}

// atFDCWD is AT_FDCWD (-100) as a raw syscall argument.
const atFDCWD = ^uintptr(99)

// execOps searches PATH inside the sandbox like execvp.
func (pl *plan) execOps(spec *Spec) {
	p := &pl.prog
	argv := p.strv(spec.Args)
	envv := p.strv(spec.Env)
	var cands []string
	if strings.Contains(spec.Path, "/") {
		cands = []string{spec.Path}
	} else {
		path := "/usr/local/bin:/usr/bin:/bin"
		for _, kv := range spec.Env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		for _, dir := range filepath.SplitList(path) {
			if filepath.IsAbs(dir) {
				cands = append(cands, filepath.Join(dir, spec.Path))
			}
		}
		if len(cands) == 0 {
			cands = []string{"/" + spec.Path}
		}
	}
	for i, c := range cands {
		o := p.sys("exec "+spec.Path, unix.SYS_EXECVE, p.str(c), argv, envv)
		o.flags = fExecSearch
		if i == len(cands)-1 {
			o.flags |= fExecLast
		}
	}
}

func (pl *plan) pipes() error {
	var fds [2]int
	mk := func(r, w *int) error {
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			return err
		}
		*r, *w = highFd(fds[0]), highFd(fds[1])
		return nil
	}
	if err := mk(&pl.syncR, &pl.syncW); err != nil {
		return err
	}
	if err := mk(&pl.errR, &pl.errW); err != nil {
		unix.Close(pl.syncR)
		unix.Close(pl.syncW)
		return err
	}
	if err := mk(&pl.statusR, &pl.statusW); err != nil {
		for _, fd := range []int{pl.syncR, pl.syncW, pl.errR, pl.errW} {
			unix.Close(fd)
		}
		return err
	}
	return nil
}

// terminalOps make the target's terminal in the sandbox's devpts: open its
// ptmx, unlock, size it, open the slave through the master (TIOCGPTPEER),
// put the slave on the terminal slots as the controlling terminal, and send
// the master to the broker, keeping no copy.
func (pl *plan) terminalOps(t *Terminal) {
	p := &pl.prog
	const stage = "terminal"
	master, slave := p.slot(), p.slot()
	// The master's number goes straight into the message that carries it.
	oob := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(4))
	fdAt := (*int32)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
	one := []byte{1}
	iov := &unix.Iovec{Base: &one[0]}
	iov.SetLen(1)
	msg := &unix.Msghdr{Iov: iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	unlock := new(int32)
	ws := &unix.Winsize{Row: t.Rows, Col: t.Cols}
	p.keep = append(p.keep, oob, one, iov, msg, unlock, ws)

	o := p.sys(stage, unix.SYS_OPENAT, atFDCWD, p.str("/dev/pts/ptmx"), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	o.out, o.store = master, fdAt
	in := func(o *op, s int8) { o.in, o.inArg = s, 0 }
	in(p.sys(stage, unix.SYS_IOCTL, 0, unix.TIOCSPTLCK, uintptr(unsafe.Pointer(unlock))), master)
	in(p.sys(stage, unix.SYS_IOCTL, 0, unix.TIOCSWINSZ, uintptr(unsafe.Pointer(ws))), master)
	o = p.sys(stage, unix.SYS_IOCTL, 0, unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	in(o, master)
	o.out = slave
	ctty := -1
	for i, on := range t.Slots {
		if on {
			in(p.sys(stage, unix.SYS_DUP3, 0, uintptr(i), 0), slave)
			if ctty < 0 {
				ctty = i
			}
		}
	}
	in(p.sys(stage, unix.SYS_CLOSE, 0), slave)
	p.sys(stage, unix.SYS_IOCTL, uintptr(ctty), unix.TIOCSCTTY, 0)
	p.sys(stage, unix.SYS_SENDMSG, uintptr(pl.ptyW), uintptr(unsafe.Pointer(msg)), 0).flags = fMustRead1
	in(p.sys(stage, unix.SYS_CLOSE, 0), master)
	p.sys(stage, unix.SYS_CLOSE, uintptr(pl.ptyW))
}

func (pl *plan) closeAll() {
	for _, fd := range pl.fds() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// highFd moves fd above stdio so the child's dup3 onto 0..2 cannot clobber
// it (the broker may run with a closed stdin).
func highFd(fd int) int {
	if fd > 2 {
		return fd
	}
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return fd
	}
	unix.Close(fd)
	return nfd
}

// fds are every pipe and socket end the plan made (-1 for those unused).
func (pl *plan) fds() []int {
	return []int{pl.syncR, pl.syncW, pl.errR, pl.errW, pl.statusR, pl.statusW, pl.notifyR, pl.notifyW, pl.ptyR, pl.ptyW}
}

func (pl *plan) maxFd() int {
	m := 2
	for _, fd := range pl.fds() {
		if fd > m {
			m = fd
		}
	}
	return m
}

// mounts compiles the filesystem view: private propagation, bind sources
// opened before the staging tmpfs covers anything, a tmpfs root with the
// mounts, /dev and /proc, then pivot_root.
// identity switches to the sandbox user; it runs after the bind sources are
// opened (with the caller's access, as the caller asked for them) and before
// anything is created (files made by an unmapped host root fail).
func (pl *plan) mounts(spec *Spec, hf hostFacts, identity func()) error {
	p := &pl.prog
	p.sys("mount propagation private", unix.SYS_MOUNT, p.str(""), p.str("/"), p.str(""), unix.MS_REC|unix.MS_PRIVATE, 0)

	ms := append([]Mount(nil), spec.Mounts...)
	sort.SliceStable(ms, func(i, j int) bool { return depth(ms[i].Dest) < depth(ms[j].Dest) })

	// Open every bind source first, while the host view is intact.
	srcSlot := make([]int8, len(ms))
	srcDir := make([]bool, len(ms))
	srcFlags := make([]uintptr, len(ms))
	for i, m := range ms {
		if m.Kind != Bind {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(m.Source, &st); err != nil {
			return &StageError{Stage: "mount " + m.Dest, Err: fmt.Errorf("source %s: %w", m.Source, err)}
		}
		srcDir[i] = st.Mode&unix.S_IFMT == unix.S_IFDIR
		var sfs unix.Statfs_t
		if err := unix.Statfs(m.Source, &sfs); err == nil {
			srcFlags[i] = lockedFlags(sfs.Flags)
		}
		srcSlot[i] = p.slot()
		stage := "mount " + m.Dest
		p.sys(stage, unix.SYS_OPENAT, atFDCWD, p.str(m.Source), unix.O_PATH|unix.O_CLOEXEC).out = srcSlot[i]
		if !hf.openTreeOK {
			continue
		}
		// Clone the source tree now, before the staging tmpfs exists, so a
		// source above the staging dir cannot pull the sandbox into itself.
		attr := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
		if !m.Writable {
			attr |= unix.MOUNT_ATTR_RDONLY
		}
		t := p.slot()
		o := p.sys(stage, unix.SYS_OPEN_TREE, 0, p.str(""), unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
		o.in, o.inArg, o.out = srcSlot[i], 0, t
		ma := &unix.MountAttr{Attr_set: attr}
		p.keep = append(p.keep, ma)
		o = p.sys(stage, unix.SYS_MOUNT_SETATTR, 0, p.str(""), unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, uintptr(unsafe.Pointer(ma)), unsafe.Sizeof(*ma))
		o.in, o.inArg = t, 0
		o = p.sys(stage, unix.SYS_CLOSE, 0)
		o.in, o.inArg = srcSlot[i], 0
		srcSlot[i] = t
	}

	identity()

	tsize := func(n int64) string {
		if n <= 0 {
			n = 64 << 20
		}
		return strconv.FormatInt(n, 10)
	}
	p.sys("mount root tmpfs", unix.SYS_MOUNT, p.str("tmpfs"), p.str(newRoot), p.str("tmpfs"),
		unix.MS_NOSUID|unix.MS_NODEV, p.str("mode=0755,size=4194304"))

	made := map[string]bool{"/": true}
	mkdirs := func(dir string) {
		var chain []string
		for d := dir; !made[d]; d = filepath.Dir(d) {
			chain = append(chain, d)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			made[chain[i]] = true
			p.sys("mkdir "+chain[i], unix.SYS_MKDIRAT, atFDCWD, p.str(newRoot+chain[i]), 0o755).flags = fEEXISTOK
		}
	}
	mkfile := func(path string) {
		mkdirs(filepath.Dir(path))
		p.sys("create "+path, unix.SYS_MKNODAT, atFDCWD, p.str(newRoot+path), unix.S_IFREG|0o644, 0).flags = fEEXISTOK
	}
	remount := func(stage, dst string, flags uintptr) {
		p.sys(stage, unix.SYS_MOUNT, p.str(""), p.str(newRoot+dst), p.str(""), unix.MS_REMOUNT|unix.MS_BIND|flags, 0)
	}

	for i, m := range ms {
		stage := "mount " + m.Dest
		switch m.Kind {
		case Bind:
			if srcDir[i] {
				mkdirs(m.Dest)
			} else {
				mkfile(m.Dest)
			}
			if hf.openTreeOK {
				t := srcSlot[i]
				o := p.sys(stage, unix.SYS_MOVE_MOUNT, 0, p.str(""), atFDCWD, p.str(newRoot+m.Dest), unix.MOVE_MOUNT_F_EMPTY_PATH)
				o.in, o.inArg = t, 0
			} else {
				// Older kernels: bind through the fd's /proc/self/fd link,
				// then remount the top mount (submounts keep their flags).
				buf := make([]byte, 40)
				copy(buf, "/proc/self/fd/")
				p.keep = append(p.keep, buf)
				bp := uintptr(unsafe.Pointer(&buf[0]))
				p.ops = append(p.ops, op{kind: kFdPath, args: [6]uintptr{0, 14}, buf: unsafe.Pointer(&buf[0]), in: srcSlot[i], inArg: -1, out: -1, stage: p.stageIndex(stage)})
				p.sys(stage, unix.SYS_MOUNT, bp, p.str(newRoot+m.Dest), p.str(""), unix.MS_BIND|unix.MS_REC, 0)
				fl := uintptr(unix.MS_NOSUID|unix.MS_NODEV) | srcFlags[i]
				if !m.Writable {
					fl |= unix.MS_RDONLY
				}
				remount(stage, m.Dest, fl)
			}
		case Tmpfs:
			mkdirs(m.Dest)
			mode := "0755"
			if m.Dest == "/tmp" || m.Dest == "/var/tmp" || m.Dest == "/dev/shm" {
				mode = "1777"
			}
			p.sys(stage, unix.SYS_MOUNT, p.str("tmpfs"), p.str(newRoot+m.Dest), p.str("tmpfs"),
				unix.MS_NOSUID|unix.MS_NODEV, p.str("mode="+mode+",size="+tsize(m.Size)))
			if !m.Writable {
				remount(stage, m.Dest, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV)
			}
		case Symlink:
			mkdirs(filepath.Dir(m.Dest))
			p.sys("symlink "+m.Dest, unix.SYS_SYMLINKAT, p.str(m.Source), atFDCWD, p.str(newRoot+m.Dest))
		case File:
			mkdirs(filepath.Dir(m.Dest))
			s := p.slot()
			p.sys("write "+m.Dest, unix.SYS_OPENAT, atFDCWD, p.str(newRoot+m.Dest), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644).out = s
			o := p.sys("write "+m.Dest, unix.SYS_WRITE, 0, p.bytes(m.Data), uintptr(len(m.Data)))
			o.in, o.inArg = s, 0
			o = p.sys("write "+m.Dest, unix.SYS_CLOSE, 0)
			o.in, o.inArg = s, 0
		}
	}
	for i, m := range ms {
		if m.Kind == Bind {
			o := p.sys("open "+m.Source, unix.SYS_CLOSE, 0)
			o.in, o.inArg = srcSlot[i], 0
		}
	}

	// /dev: a tmpfs with a few host nodes, a private devpts and /dev/shm.
	if !made["/dev"] {
		mkdirs("/dev")
		p.sys("mount /dev", unix.SYS_MOUNT, p.str("tmpfs"), p.str(newRoot+"/dev"), p.str("tmpfs"),
			unix.MS_NOSUID|unix.MS_NOEXEC, p.str("mode=0755,size=65536"))
		for _, n := range devNodes {
			d := "/dev/" + n
			p.sys("mount "+d, unix.SYS_MKNODAT, atFDCWD, p.str(newRoot+d), unix.S_IFREG|0o666, 0)
			p.sys("mount "+d, unix.SYS_MOUNT, p.str(d), p.str(newRoot+d), p.str(""), unix.MS_BIND, 0)
			remount("mount "+d, d, unix.MS_NOSUID|unix.MS_NOEXEC)
		}
		made["/dev/pts"] = true
		p.sys("mkdir /dev/pts", unix.SYS_MKDIRAT, atFDCWD, p.str(newRoot+"/dev/pts"), 0o755)
		o := p.sys("mount /dev/pts", unix.SYS_MOUNT, p.str("devpts"), p.str(newRoot+"/dev/pts"), p.str("devpts"),
			unix.MS_NOSUID|unix.MS_NOEXEC, p.str("newinstance,ptmxmode=0666,mode=0620"))
		if spec.Terminal == nil {
			o.flags = fIgnoreErr // a program may do without; the target's terminal cannot
		}
		p.sys("mount /dev/ptmx", unix.SYS_SYMLINKAT, p.str("pts/ptmx"), atFDCWD, p.str(newRoot+"/dev/ptmx"))
		if !made["/dev/shm"] {
			made["/dev/shm"] = true
			p.sys("mkdir /dev/shm", unix.SYS_MKDIRAT, atFDCWD, p.str(newRoot+"/dev/shm"), 0o755)
			p.sys("mount /dev/shm", unix.SYS_MOUNT, p.str("tmpfs"), p.str(newRoot+"/dev/shm"), p.str("tmpfs"),
				unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, p.str("mode=1777,size="+tsize(shmSize(spec))))
		}
		for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
			"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
			p.sys("mount /dev", unix.SYS_SYMLINKAT, p.str(target), atFDCWD, p.str(newRoot+"/dev/"+name))
		}
		remount("mount /dev", "/dev", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC)
	}

	// /proc: a fresh procfs for the new pid namespace, with kernel data masked.
	mkdirs("/proc")
	p.sys("mount /proc", unix.SYS_MOUNT, p.str("proc"), p.str(newRoot+"/proc"), p.str("proc"),
		unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, 0)
	for _, f := range maskedProcFiles {
		p.sys("mask /proc/"+f, unix.SYS_MOUNT, p.str(newRoot+"/dev/null"), p.str(newRoot+"/proc/"+f), p.str(""), unix.MS_BIND, 0).flags = fIgnoreErr
	}
	for _, d := range maskedProcDirs {
		p.sys("mask /proc/"+d, unix.SYS_MOUNT, p.str("tmpfs"), p.str(newRoot+"/proc/"+d), p.str("tmpfs"),
			unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, p.str("size=0,mode=0555")).flags = fIgnoreErr
	}

	// Kernel knobs stay readable (programs read sysctls) but never writable.
	p.sys("mount /proc/sys", unix.SYS_MOUNT, p.str(newRoot+"/proc/sys"), p.str(newRoot+"/proc/sys"), p.str(""), unix.MS_BIND|unix.MS_REC, 0)
	remount("mount /proc/sys", "/proc/sys", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)

	// Read-only root, then pivot into it and drop the old root.
	remount("read-only root", "", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV)
	p.sys("pivot_root", unix.SYS_CHDIR, p.str(newRoot))
	p.sys("pivot_root", unix.SYS_PIVOT_ROOT, p.str("."), p.str("."))
	p.sys("detach old root", unix.SYS_UMOUNT2, p.str("."), unix.MNT_DETACH)
	p.sys("pivot_root", unix.SYS_CHDIR, p.str("/"))
	return nil
}

func shmSize(spec *Spec) int64 {
	for _, m := range spec.Mounts {
		if m.Kind == Tmpfs && m.Dest == "/tmp" {
			return m.Size
		}
	}
	return 64 << 20
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// lockedFlags are the mount flags of a bind source that a user namespace
// may not clear on remount.
func lockedFlags(f int64) uintptr {
	var m uintptr
	for st, ms := range map[int64]uintptr{unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME,
		unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV} {
		if f&st != 0 {
			m |= ms
		}
	}
	return m
}

// StageError is a setup failure in a named stage.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

var errNoStatus = errors.New("sandbox init ended without reporting the target's status")

// rlimitNames name resources for errors ("set RLIMIT_NOFILE: ...").
var rlimitNames = map[int]string{unix.RLIMIT_CPU: "RLIMIT_CPU", unix.RLIMIT_FSIZE: "RLIMIT_FSIZE",
	unix.RLIMIT_DATA: "RLIMIT_DATA", unix.RLIMIT_STACK: "RLIMIT_STACK", unix.RLIMIT_CORE: "RLIMIT_CORE",
	unix.RLIMIT_NPROC: "RLIMIT_NPROC", unix.RLIMIT_NOFILE: "RLIMIT_NOFILE", unix.RLIMIT_AS: "RLIMIT_AS",
	unix.RLIMIT_MEMLOCK: "RLIMIT_MEMLOCK", unix.RLIMIT_RTPRIO: "RLIMIT_RTPRIO", unix.RLIMIT_MSGQUEUE: "RLIMIT_MSGQUEUE"}

func rlimitName(r int) string {
	if n, ok := rlimitNames[r]; ok {
		return n
	}
	return fmt.Sprintf("rlimit %d", r)
}
