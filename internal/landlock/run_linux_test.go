package landlock

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ptrAt turns an address held in an Op back into a pointer; the memory is
// kept alive by the Prepared the test holds.
func ptrAt(u uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&u)) }

func cstr(s string) *byte { b := append([]byte(s), 0); return &b[0] }

const sentinel = int32(-7)

func noSlots() [6]int { return [6]int{-1, -1, -1, -1, -1, -1} }

func TestRunMachine(t *testing.T) {
	missing, root := cstr("/nonexistent-airlock-landlock"), cstr("/")
	var skipped1, skipped2, fd, fdFlags, pid, ppid = sentinel, sentinel, sentinel, sentinel, sentinel, sentinel
	at := uintptr(^uint(0) - 99)
	slot1 := [6]int{1, -1, -1, -1, -1, -1}
	ops := []Op{
		// ENOENT tolerated: skip the next op.
		{Nr: unix.SYS_OPENAT, Args: [6]uintptr{at, uintptr(unsafe.Pointer(missing)), unix.O_PATH}, ArgFromSlot: noSlots(), Result: -1, Tolerate: syscall.ENOENT, SkipOnErr: 1},
		{Nr: unix.SYS_GETPID, ArgFromSlot: noSlots(), Result: -1, StoreFDAt: [2]unsafe.Pointer{unsafe.Pointer(&skipped1)}},
		// Result to slot 1 and to memory, then used as an argument.
		{Nr: unix.SYS_OPENAT, Args: [6]uintptr{at, uintptr(unsafe.Pointer(root)), unix.O_PATH | unix.O_CLOEXEC}, ArgFromSlot: noSlots(), Result: 1, StoreFDAt: [2]unsafe.Pointer{unsafe.Pointer(&fd)}},
		{Nr: unix.SYS_FCNTL, Args: [6]uintptr{0, unix.F_GETFD}, ArgFromSlot: slot1, Result: -1, StoreFDAt: [2]unsafe.Pointer{unsafe.Pointer(&fdFlags)}},
		// Success skips the next op.
		{Nr: unix.SYS_GETPID, ArgFromSlot: noSlots(), Result: -1, SkipOnOK: 1, StoreFDAt: [2]unsafe.Pointer{nil, unsafe.Pointer(&pid)}},
		{Nr: unix.SYS_GETPID, ArgFromSlot: noSlots(), Result: -1, StoreFDAt: [2]unsafe.Pointer{unsafe.Pointer(&skipped2)}},
		{Nr: unix.SYS_CLOSE, ArgFromSlot: slot1, Result: -1},
		// A second close fails with EBADF, ignored.
		{Nr: unix.SYS_CLOSE, ArgFromSlot: slot1, Result: -1, IgnoreErrno: true},
		{Nr: unix.SYS_GETPPID, ArgFromSlot: noSlots(), Result: -1, StoreFDAt: [2]unsafe.Pointer{unsafe.Pointer(&ppid)}},
	}
	if i, e := Run(ops); i != -1 || e != 0 {
		t.Fatalf("Run failed at %d: %v", i, e)
	}
	if skipped1 != sentinel || skipped2 != sentinel {
		t.Errorf("skipped ops ran: %d %d", skipped1, skipped2)
	}
	if fd < 0 || fdFlags != unix.FD_CLOEXEC {
		t.Errorf("fd %d flags %d, want an fd with FD_CLOEXEC", fd, fdFlags)
	}
	if int(pid) != os.Getpid() || int(ppid) != os.Getppid() {
		t.Errorf("pid %d ppid %d, want %d %d", pid, ppid, os.Getpid(), os.Getppid())
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("fd %d still open after the close op: %v", fd, err)
	}
}

func TestRunFailure(t *testing.T) {
	missing := cstr("/nonexistent-airlock-landlock")
	after := sentinel
	tests := []struct {
		name string
		op   Op
		want syscall.Errno
	}{
		{"close without IgnoreErrno", Op{Nr: unix.SYS_CLOSE, Args: [6]uintptr{^uintptr(0)}, ArgFromSlot: noSlots(), Result: -1}, syscall.EBADF},
		{"other errno than tolerated", Op{Nr: unix.SYS_OPENAT, Args: [6]uintptr{uintptr(^uint(0) - 99), uintptr(unsafe.Pointer(missing)), unix.O_PATH}, ArgFromSlot: noSlots(), Result: -1, Tolerate: syscall.EINVAL, SkipOnErr: 1}, syscall.ENOENT},
	}
	for _, tt := range tests {
		ops := []Op{
			{Nr: unix.SYS_GETPID, ArgFromSlot: noSlots(), Result: -1},
			tt.op,
			{Nr: unix.SYS_GETPID, ArgFromSlot: noSlots(), Result: -1, StoreFDAt: [2]unsafe.Pointer{unsafe.Pointer(&after)}},
		}
		i, e := Run(ops)
		if i != 1 || e != tt.want {
			t.Errorf("%s: Run = %d, %v; want 1, %v", tt.name, i, e, tt.want)
		}
		if after != sentinel {
			t.Errorf("%s: op after the failure ran", tt.name)
		}
	}
}

func TestRunAllocs(t *testing.T) {
	missing := cstr("/nonexistent-airlock-landlock")
	ops := []Op{
		{Nr: unix.SYS_OPENAT, Args: [6]uintptr{uintptr(^uint(0) - 99), uintptr(unsafe.Pointer(missing)), unix.O_PATH}, ArgFromSlot: noSlots(), Result: 0, Tolerate: syscall.ENOENT, SkipOnErr: 1},
		{Nr: unix.SYS_CLOSE, ArgFromSlot: [6]int{0, -1, -1, -1, -1, -1}, Result: -1},
		{Nr: unix.SYS_GETPID, ArgFromSlot: noSlots(), Result: 2},
	}
	if n := testing.AllocsPerRun(100, func() { Run(ops) }); n != 0 {
		t.Errorf("Run allocates %v times per run", n)
	}
}

// TestPreparedMemory checks the bytes the kernel will read.
func TestPreparedMemory(t *testing.T) {
	rs := &Ruleset{ABI: 7, HandledFS: 0xffff, HandledNet: 3, Scoped: 2, Flags: 2,
		Paths: []PathRule{{"/dir", 0xd}, {"/file-only", AccessFSReadFile}},
		Ports: []PortRule{{8080, AccessNetBindTCP}}}
	p, err := rs.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	ops := p.Ops()
	nrs := []uintptr{unix.SYS_LANDLOCK_CREATE_RULESET,
		unix.SYS_OPENAT, unix.SYS_LANDLOCK_ADD_RULE, unix.SYS_LANDLOCK_ADD_RULE, unix.SYS_CLOSE, // /dir: two forms
		unix.SYS_OPENAT, unix.SYS_LANDLOCK_ADD_RULE, unix.SYS_CLOSE, // /file-only: one form
		unix.SYS_LANDLOCK_ADD_RULE, unix.SYS_LANDLOCK_RESTRICT_SELF, unix.SYS_CLOSE}
	if len(ops) != len(nrs) {
		t.Fatalf("%d ops, want %d", len(ops), len(nrs))
	}
	for i, op := range ops {
		if op.Nr != nrs[i] || op.Stage == "" {
			t.Errorf("op %d: nr %d stage %q, want nr %d", i, op.Nr, op.Stage, nrs[i])
		}
	}
	attr := (*[3]uint64)(ptrAt(ops[0].Args[0]))
	if *attr != [3]uint64{0xffff, 3, 2} || ops[0].Args[1] != 24 || ops[0].Result != 0 {
		t.Errorf("ruleset attr %v size %d", *attr, ops[0].Args[1])
	}
	if ops[1].SkipOnErr != 3 || ops[1].Tolerate != syscall.ENOENT || ops[5].SkipOnErr != 2 {
		t.Errorf("open skips %d %d", ops[1].SkipOnErr, ops[5].SkipOnErr)
	}
	if ops[2].Tolerate != syscall.EINVAL || ops[2].SkipOnOK != 1 || ops[3].Tolerate != 0 {
		t.Errorf("dir/file fallback not set up")
	}
	path := unsafe.String((*byte)(ptrAt(ops[1].Args[1])), 5)
	if path != "/dir\x00" {
		t.Errorf("path bytes %q", path)
	}
	// The open stores the fd into both forms' parent_fd (offset 8).
	for k, form := range []uintptr{ops[2].Args[2], ops[3].Args[2]} {
		if uintptr(ops[1].StoreFDAt[k]) != form+8 {
			t.Errorf("StoreFDAt[%d] does not point at parent_fd", k)
		}
	}
	if a := *(*uint64)(ptrAt(ops[2].Args[2])); a != 0xd {
		t.Errorf("dir form access %#x", a)
	}
	if a := *(*uint64)(ptrAt(ops[3].Args[2])); a != 0x5 {
		t.Errorf("file form access %#x, want execute|read_file", a)
	}
	port := (*[2]uint64)(ptrAt(ops[8].Args[2]))
	if *port != [2]uint64{1, 8080} || ops[8].Args[1] != ruleTypeNetPort {
		t.Errorf("net rule %v", *port)
	}
	if ops[9].Args[1] != 2 || ops[9].ArgFromSlot[0] != 0 || !ops[10].IgnoreErrno {
		t.Errorf("restrict_self/close ops wrong: %+v %+v", ops[9], ops[10])
	}
	runtime.KeepAlive(p)
}

func TestABI(t *testing.T) {
	abi, err := ABI()
	if err != nil {
		t.Skipf("Landlock not available on this host: %v", err)
	}
	if abi < 1 {
		t.Errorf("ABI %d without error", abi)
	}
	t.Logf("Landlock ABI %d", abi)
}
