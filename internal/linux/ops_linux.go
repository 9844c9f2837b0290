package linux

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// opKind says how the child interprets an op.
type opKind uint8

const (
	// kSys runs the system call nr with args.
	kSys opKind = iota
	// kCloexecFrom marks fds args[0].. as close-on-exec, with close_range
	// when the kernel has it and one fcntl a fd otherwise.
	kCloexecFrom
	// kFork starts the target (forkTarget: a vfork where written for the
	// architecture): in the child it continues with the next op, in the
	// parent (the init) it stores the pid and jumps to op args[0].
	kFork
	// kReap is the init's loop: reap every child until the one whose pid is
	// in slot args[0] exits, write its wait status (bit 32 set when no
	// other process is left) and rusage to fd args[1], then exit.
	kReap
	// kExit ends the process with status args[0].
	kExit
	// kFdPath writes slots[in] in decimal, NUL-terminated, at byte
	// args[1] of buf ("/proc/self/fd/" + N).
	kFdPath
)

// op flags.
const (
	fIgnoreErr  = 1 << iota // any errno is fine
	fMustRead1              // r1 must be 1 (a sync byte), else the parent is gone
	fExecSearch             // ENOENT/ENOTDIR/EACCES: remember, try the next op
	fExecLast               // report the remembered exec errno if this op fails too
	fEEXISTOK               // EEXIST is fine (mkdir -p)
	fInd32                  // ind points at int32s (fds received in a cmsg)
)

// op is one step of the child's program.
type op struct {
	kind  opKind
	flags uint8
	nr    uintptr
	args  [6]uintptr
	// in >= 0: args[inArg] = slots[in] before the call.
	in, inArg int8
	// ind[i] != nil: args[i] = *ind[i] before the call (arguments the
	// broker writes after the fork, for warm sandboxes).
	ind *[6]*uintptr
	// out >= 0: slots[out] = r1 after the call.
	out int8
	// store, store2 != nil: *store = int32(r1) after the call.
	store, store2 *int32
	// tolerate: on this errno skip the next skipErr ops; on success skip
	// the next skipOK ops.
	tolerate        syscall.Errno
	skipErr, skipOK int16
	// buf is kFdPath's output buffer.
	buf   unsafe.Pointer
	stage int32
}

// program is an op list plus what keeps its memory alive and names its
// stages.
type program struct {
	ops    []op
	stages []string
	keep   []any
	nslots int8
	// init and target are the two processes' interpreter states.
	init, target runState
}

func (p *program) stageIndex(name string) int32 {
	p.stages = append(p.stages, name)
	return int32(len(p.stages) - 1)
}

// sys appends a system call op.
func (p *program) sys(stage string, nr uintptr, args ...uintptr) *op {
	o := op{kind: kSys, nr: nr, in: -1, inArg: -1, out: -1, stage: p.stageIndex(stage)}
	copy(o.args[:], args)
	p.ops = append(p.ops, o)
	return &p.ops[len(p.ops)-1]
}

func (p *program) slot() int8 { p.nslots++; return p.nslots - 1 }

// str returns a pointer to a NUL-terminated copy of s that lives as long as
// the program.
func (p *program) str(s string) uintptr {
	b := append([]byte(s), 0)
	p.keep = append(p.keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

// bytes returns a pointer to b's contents, kept alive as long as the
// program. Not a copy: file contents run to a hundred kilobytes a launch,
// and a warm sandbox's spec is already a private copy.
func (p *program) bytes(b []byte) uintptr {
	if len(b) == 0 {
		b = []byte{0}
	}
	p.keep = append(p.keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

// strv returns a NULL-terminated array of C strings.
func (p *program) strv(ss []string) uintptr {
	v := make([]uintptr, len(ss)+1)
	for i, s := range ss {
		v[i] = p.str(s)
	}
	p.keep = append(p.keep, v)
	return uintptr(unsafe.Pointer(&v[0]))
}

// String prints the program as a launch plan: one line per stage, with how
// many system calls it makes.
func (p *program) String() string {
	var b strings.Builder
	for i := 0; i < len(p.ops); {
		j := i + 1
		for j < len(p.ops) && p.stages[p.ops[j].stage] == p.stages[p.ops[i].stage] && p.ops[j].kind == kSys && p.ops[i].kind == kSys {
			j++
		}
		fmt.Fprintf(&b, "%3d  %s", i, p.stages[p.ops[i].stage])
		switch o := p.ops[i]; o.kind {
		case kCloexecFrom:
			fmt.Fprintf(&b, " (close-on-exec for fds >= %d)", o.args[0])
		case kFork:
			b.WriteString(" (the process continues as init)")
		case kReap:
			b.WriteString(" (reap until the target exits, report its status)")
		default:
			if j-i > 1 {
				fmt.Fprintf(&b, " (%d calls)", j-i)
			}
		}
		b.WriteByte('\n')
		i = j
	}
	return b.String()
}

// childFailure is what the child writes to the error pipe before exiting.
type childFailure struct {
	Op    int32
	Errno int32
}

// Hooks into the runtime, as syscall.forkExec uses them: signals are blocked
// across the fork and the child must not touch the runtime afterwards.
//
//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()

// cloneArgs is struct clone_args (v2, with cgroup).
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls, setTID, setTIDSize, cgroup uint64
}

// runState is one process's interpreter state. It lives in the program's
// memory, not on the stack: the target shares the init's memory and stack
// until it execs (vfork), so neither may keep state the other overwrites.
type runState struct {
	i       int
	slots   [maxSlots]uintptr
	a       [6]uintptr
	digits  [24]byte
	execErr syscall.Errno
	fail    childFailure
	ws      [2]uint64 // wait status, padding
	ru      unix.Rusage
}

// forkRun clones a child with flags that runs prog; errFd is the write end
// of the error pipe. It returns the child's pid and pidfd. The child (the
// sandbox's init) runs the ops; at kFork it starts the target with
// forkTarget and goes on at the op kFork names.
//
//go:norace
//go:nocheckptr
//go:noinline
func forkRun(prog *program, flags uintptr, errFd int, cgroupFd int) (pid int, pidfd int32, err syscall.Errno) {
	var (
		ca cloneArgs
		r1 uintptr
		e1 syscall.Errno
		o  *op
		st = &prog.init
	)
	pidfd = -1
	ca.flags = uint64(flags) | unix.CLONE_PIDFD
	ca.pidfd = uint64(uintptr(unsafe.Pointer(&pidfd)))
	ca.exitSignal = uint64(syscall.SIGCHLD)
	if cgroupFd >= 0 {
		ca.flags |= unix.CLONE_INTO_CGROUP
		ca.cgroup = uint64(cgroupFd)
	}

	runtime_BeforeFork()
	r1, _, e1 = syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&ca)), unsafe.Sizeof(ca), 0)
	if e1 != 0 || r1 != 0 {
		runtime_AfterFork()
		return int(r1), pidfd, e1
	}

	// Child. From here on: raw system calls only.
	runtime_AfterForkInChild()
	st.i = 0
	for {
		interp(prog, st, errFd) // returns only at kFork
		o = &prog.ops[st.i]
		r1, e1 = forkTarget(prog, errFd)
		if e1 != 0 {
			childFail(st, e1, errFd)
		}
		st.slots[o.out] = r1
		st.i = int(o.args[0])
	}
}

// startTarget is the target's side of forkTarget: its own copy of the
// init's state, from the op after kFork. It does not return.
//
//go:nosplit
//go:norace
//go:nocheckptr
func startTarget(prog *program, errFd int) {
	ts := &prog.target
	ts.slots = prog.init.slots
	ts.i = prog.init.i + 1
	interp(prog, ts, errFd)
	// A second kFork: the plan is wrong.
	childFail(ts, syscall.EINVAL, errFd)
}

// interp runs prog's ops from st.i. It returns only at a kFork op (st.i
// points at it); exec or exit end it otherwise, and a failure is reported
// on errFd before the process exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func interp(prog *program, st *runState, errFd int) {
	var (
		r1   uintptr
		e1   syscall.Errno
		o    *op
		n, d uintptr
		fd   uintptr
		ops  = prog.ops
	)
	for ; st.i < len(ops); st.i++ {
		o = &ops[st.i]
		switch o.kind {
		case kCloexecFrom:
			_, _, e1 = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, o.args[0], ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC)
			if e1 != 0 {
				for fd = o.args[0]; fd < o.args[1]; fd++ {
					syscall.RawSyscall(unix.SYS_FCNTL, fd, syscall.F_SETFD, syscall.FD_CLOEXEC)
				}
			}
			continue
		case kFork:
			return
		case kReap:
			for {
				r1, _, e1 = syscall.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(&st.ws[0])), 0, uintptr(unsafe.Pointer(&st.ru)), 0, 0)
				if e1 == syscall.EINTR {
					continue
				}
				if e1 != 0 || r1 == st.slots[o.args[0]] {
					break
				}
			}
			// No child left means no process left in the namespace:
			// orphans are the init's children before their parent can be
			// reaped. The broker then need not look in the target's group.
			st.ws[0] &= 1<<32 - 1
			_, _, e1 = syscall.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), 0, unix.WNOHANG|unix.WALL, 0, 0, 0)
			if e1 == syscall.ECHILD {
				st.ws[0] |= 1 << 32
			}
			syscall.RawSyscall(unix.SYS_WRITE, o.args[1], uintptr(unsafe.Pointer(&st.ws[0])), 8)
			syscall.RawSyscall(unix.SYS_WRITE, o.args[1], uintptr(unsafe.Pointer(&st.ru)), unsafe.Sizeof(st.ru))
			for {
				syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
			}
		case kFdPath:
			n, d = st.slots[o.in], 0
			for {
				st.digits[d] = byte('0' + n%10)
				d++
				n /= 10
				if n == 0 {
					break
				}
			}
			for n = 0; n < d; n++ {
				*(*byte)(unsafe.Add(o.buf, o.args[1]+n)) = st.digits[d-1-n]
			}
			*(*byte)(unsafe.Add(o.buf, o.args[1]+d)) = 0
			continue
		case kExit:
			for {
				syscall.RawSyscall(unix.SYS_EXIT_GROUP, o.args[0], 0, 0)
			}
		}
		st.a = o.args
		if o.in >= 0 {
			st.a[o.inArg] = st.slots[o.in]
		}
		if o.ind != nil {
			for n = 0; n < 6; n++ {
				if o.ind[n] != nil {
					if o.flags&fInd32 != 0 {
						st.a[n] = uintptr(*(*int32)(unsafe.Pointer(o.ind[n])))
					} else {
						st.a[n] = *o.ind[n]
					}
				}
			}
		}
		r1, _, e1 = syscall.RawSyscall6(o.nr, st.a[0], st.a[1], st.a[2], st.a[3], st.a[4], st.a[5])
		if e1 != 0 {
			if o.flags&fIgnoreErr != 0 || (o.flags&fEEXISTOK != 0 && e1 == syscall.EEXIST) {
				continue
			}
			if o.tolerate != 0 && e1 == o.tolerate {
				st.i += int(o.skipErr)
				continue
			}
			if o.flags&fExecSearch != 0 && (e1 == syscall.ENOENT || e1 == syscall.ENOTDIR || e1 == syscall.EACCES) {
				if st.execErr != syscall.EACCES {
					st.execErr = e1
				}
				if o.flags&fExecLast == 0 {
					continue
				}
				e1 = st.execErr
			}
			childFail(st, e1, errFd)
		}
		if o.flags&fMustRead1 != 0 && r1 != 1 {
			childFail(st, syscall.EPIPE, errFd)
		}
		if o.out >= 0 {
			st.slots[o.out] = r1
		}
		if o.store != nil {
			*o.store = int32(r1)
		}
		if o.store2 != nil {
			*o.store2 = int32(r1)
		}
		st.i += int(o.skipOK)
	}
	childFail(st, syscall.EINVAL, errFd) // fell off the end: the program must exec or exit
}

// childFail reports the op at st.i and errno on errFd and exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func childFail(st *runState, e1 syscall.Errno, errFd int) {
	st.fail.Op = int32(st.i)
	st.fail.Errno = int32(e1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(errFd), uintptr(unsafe.Pointer(&st.fail)), unsafe.Sizeof(st.fail))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}
