package landlock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unsafe"
)

// NumSlots is the number of result slots an executor keeps (uintptr each,
// zero at the start). The landlock ops use slot 0 for the ruleset fd and
// slot 1 for the fd of the path being added.
const NumSlots = 4

// Op is one raw system call of the apply sequence. An executor runs ops in
// order, starting at index 0, with NumSlots slots, and interprets the
// fields exactly so (Run is the reference):
//
//  1. Arguments: a[i] = Args[i], except when ArgFromSlot[i] >= 0, then
//     a[i] = slot[ArgFromSlot[i]].
//  2. r1, errno = RawSyscall6(Nr, a[0..5]).
//  3. On errno != 0:
//     - IgnoreErrno: go on with the next op;
//     - else if Tolerate != 0 and errno == Tolerate: skip the next
//     SkipOnErr ops;
//     - else stop: the sequence failed at this op with errno. Stage names
//     the step for the error message.
//  4. On success: if Result >= 0, slot[Result] = r1; for each non-nil
//     StoreFDAt pointer p, store int32(r1) at p; then skip the next
//     SkipOnOK ops.
//
// Result and ArgFromSlot hold -1 or a slot index below NumSlots. StoreFDAt
// has two entries because a path rule exists in two forms (directory, and
// file as the EINVAL fallback) and both need the opened fd as parent_fd.
// Skips never run past the end. Pointers in Args point into the Prepared
// they came from, which must stay reachable (runtime.KeepAlive) until the
// child has run the ops. Running the ops writes fds into that memory (the
// parent's own memory when the child shares it, CLONE_VM), so a Prepared
// must not be used by two children at the same time.
type Op struct {
	Nr          uintptr
	Args        [6]uintptr
	ArgFromSlot [6]int
	Result      int
	StoreFDAt   [2]unsafe.Pointer
	IgnoreErrno bool
	Tolerate    syscall.Errno
	SkipOnErr   int
	SkipOnOK    int
	Stage       string
}

// sysnums are the system call numbers and constants the ops use.
type sysnums struct {
	createRuleset, addRule, restrictSelf, openat, close uintptr
	oPath, oCloexec, atFDCWD                            uintptr
}

// Sizes of the kernel structures (path_beneath_attr is packed).
const (
	rulesetAttrSize     = 24 // handled_access_fs, handled_access_net, scoped
	pathBeneathAttrSize = 12 // allowed_access u64, parent_fd s32
	netPortAttrSize     = 16 // allowed_access u64, port u64
)

// Prepared holds, in memory the parent allocated, everything the child
// needs to apply a Ruleset, and the ops that do it.
type Prepared struct {
	rs      *Ruleset
	attr    []byte   // struct landlock_ruleset_attr
	paths   [][]byte // NUL-terminated
	beneath []byte   // two path_beneath_attr per path: as directory, as file
	ports   []byte   // one net_port_attr per port rule
	ops     []Op
}

// Prepare checks the ruleset and builds the child's memory and ops. A
// ruleset of ABI 0 prepares to no ops.
func (r *Ruleset) Prepare() (*Prepared, error) {
	if r == nil {
		return nil, errors.New("landlock: nil ruleset")
	}
	p := &Prepared{rs: r}
	if r.ABI == 0 {
		return p, nil
	}
	sn, err := sysNums()
	if err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	ne := binary.NativeEndian

	// The attribute size tells the kernel which fields we use; older
	// kernels reject a larger size only when its extra bytes are non-zero.
	p.attr = make([]byte, rulesetAttrSize)
	ne.PutUint64(p.attr[0:], r.HandledFS)
	ne.PutUint64(p.attr[8:], r.HandledNet)
	ne.PutUint64(p.attr[16:], r.Scoped)
	attrSize := uintptr(8)
	if r.HandledNet != 0 {
		attrSize = 16
	}
	if r.Scoped != 0 {
		attrSize = 24
	}

	p.ops = make([]Op, 0, 1+4*len(r.Paths)+len(r.Ports)+2)
	none := [6]int{-1, -1, -1, -1, -1, -1}
	ruleset := [6]int{0, -1, -1, -1, -1, -1}
	p.ops = append(p.ops, Op{
		Nr:          sn.createRuleset,
		Args:        [6]uintptr{uintptr(unsafe.Pointer(&p.attr[0])), attrSize, 0},
		ArgFromSlot: none, Result: 0,
		Stage: "landlock: create ruleset",
	})

	p.beneath = make([]byte, 2*pathBeneathAttrSize*len(r.Paths))
	p.paths = make([][]byte, len(r.Paths))
	for i, rule := range r.Paths {
		p.paths[i] = append([]byte(rule.Path), 0)
		dir := p.beneath[2*i*pathBeneathAttrSize:][:pathBeneathAttrSize]
		file := p.beneath[(2*i+1)*pathBeneathAttrSize:][:pathBeneathAttrSize]
		ne.PutUint64(dir, rule.Access)
		fileAccess := rule.Access & fileRights
		ne.PutUint64(file, fileAccess)
		// A rule on a non-directory may hold file rights only (EINVAL
		// otherwise). The parent cannot see what the path is inside the
		// sandbox, so when the classes differ the child tries the directory
		// form and falls back to the file form on EINVAL.
		twoForms := fileAccess != rule.Access && fileAccess != 0

		open := Op{
			Nr:          sn.openat,
			Args:        [6]uintptr{sn.atFDCWD, uintptr(unsafe.Pointer(&p.paths[i][0])), sn.oPath | sn.oCloexec, 0},
			ArgFromSlot: none, Result: 1,
			StoreFDAt: [2]unsafe.Pointer{unsafe.Pointer(&dir[8]), unsafe.Pointer(&file[8])},
			Tolerate:  syscall.ENOENT, SkipOnErr: 2,
			Stage: "landlock: open " + rule.Path,
		}
		addDir := Op{
			Nr:          sn.addRule,
			Args:        [6]uintptr{0, ruleTypePathBeneath, uintptr(unsafe.Pointer(&dir[0])), 0},
			ArgFromSlot: ruleset, Result: -1,
			Stage: "landlock: add rule " + rule.Path,
		}
		closeFD := Op{
			Nr:          sn.close,
			ArgFromSlot: [6]int{1, -1, -1, -1, -1, -1}, Result: -1,
			IgnoreErrno: true,
			Stage:       "landlock: close " + rule.Path,
		}
		if !twoForms {
			p.ops = append(p.ops, open, addDir, closeFD)
			continue
		}
		open.SkipOnErr = 3
		addDir.Tolerate, addDir.SkipOnOK = syscall.EINVAL, 1
		addFile := addDir
		addFile.Args[2] = uintptr(unsafe.Pointer(&file[0]))
		addFile.Tolerate, addFile.SkipOnOK = 0, 0
		addFile.Stage = "landlock: add rule " + rule.Path + " (as file)"
		p.ops = append(p.ops, open, addDir, addFile, closeFD)
	}

	p.ports = make([]byte, netPortAttrSize*len(r.Ports))
	for i, rule := range r.Ports {
		a := p.ports[i*netPortAttrSize:][:netPortAttrSize]
		ne.PutUint64(a, rule.Access)
		ne.PutUint64(a[8:], uint64(rule.Port))
		p.ops = append(p.ops, Op{
			Nr:          sn.addRule,
			Args:        [6]uintptr{0, ruleTypeNetPort, uintptr(unsafe.Pointer(&a[0])), 0},
			ArgFromSlot: ruleset, Result: -1,
			Stage: fmt.Sprintf("landlock: add rule tcp port %d", rule.Port),
		})
	}

	p.ops = append(p.ops,
		Op{
			Nr:          sn.restrictSelf,
			Args:        [6]uintptr{0, uintptr(r.Flags)},
			ArgFromSlot: ruleset, Result: -1,
			Stage: "landlock: restrict self",
		},
		Op{
			Nr:          sn.close,
			ArgFromSlot: ruleset, Result: -1,
			IgnoreErrno: true,
			Stage:       "landlock: close ruleset",
		})
	return p, nil
}

// Ops returns the apply sequence. The slice and the memory it points to
// belong to p; do not modify them.
func (p *Prepared) Ops() []Op { return p.ops }

// Ruleset returns the ruleset p was prepared from.
func (p *Prepared) Ruleset() *Ruleset { return p.rs }

// check rejects rulesets the kernel would refuse, so failures show up in
// the parent with a clear message rather than as an errno in the child.
func (r *Ruleset) check() error {
	if r.ABI < 1 || r.ABI > MaxKnownABI {
		return fmt.Errorf("landlock: ruleset ABI %d not in 1..%d", r.ABI, MaxKnownABI)
	}
	if r.HandledFS == 0 || r.HandledFS&^FSRights(r.ABI) != 0 {
		return fmt.Errorf("landlock: handled fs rights %#x invalid at ABI %d", r.HandledFS, r.ABI)
	}
	if r.HandledNet&^NetRights(r.ABI) != 0 {
		return fmt.Errorf("landlock: handled net rights %#x invalid at ABI %d", r.HandledNet, r.ABI)
	}
	if r.Scoped&^Scopes(r.ABI) != 0 {
		return fmt.Errorf("landlock: scopes %#x invalid at ABI %d", r.Scoped, r.ABI)
	}
	if r.Flags&^RestrictFlags(r.ABI) != 0 {
		return fmt.Errorf("landlock: restrict flags %#x invalid at ABI %d", r.Flags, r.ABI)
	}
	for _, p := range r.Paths {
		if p.Access == 0 || p.Access&^r.HandledFS != 0 {
			return fmt.Errorf("landlock: path %q: access %#x not within handled %#x", p.Path, p.Access, r.HandledFS)
		}
		if len(p.Path) == 0 || p.Path[0] != '/' {
			return fmt.Errorf("landlock: path %q is not absolute", p.Path)
		}
		for i := 0; i < len(p.Path); i++ {
			if p.Path[i] == 0 {
				return fmt.Errorf("landlock: path %q contains NUL", p.Path)
			}
		}
	}
	for _, p := range r.Ports {
		if p.Access == 0 || p.Access&^r.HandledNet != 0 {
			return fmt.Errorf("landlock: tcp port %d: access %#x not within handled %#x", p.Port, p.Access, r.HandledNet)
		}
	}
	return nil
}
