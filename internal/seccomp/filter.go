package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Arg matches one syscall argument: it holds when Args[Index] & Mask == Value.
// All matchers are masked-equal on the 64-bit value; the constructors below
// name the common shapes.
type Arg struct {
	Index int // 0..5
	Mask  uint64
	Value uint64
}

// Eq matches arg i equal to v on all 64 bits.
func Eq(i int, v uint64) Arg { return Arg{i, ^uint64(0), v} }

// Eq32 matches the low 32 bits of arg i. Use it for arguments the kernel
// declares int or unsigned int (ioctl request, socket family, personality):
// the kernel ignores the high half, so a filter must too (CVE-2019-10063).
func Eq32(i int, v uint32) Arg { return Arg{i, 0xffffffff, uint64(v)} }

// MaskedEq matches arg i when arg&mask == v.
func MaskedEq(i int, mask, v uint64) Arg { return Arg{i, mask, v} }

// BitsSet matches when every bit of bits is set in arg i.
func BitsSet(i int, bits uint64) Arg { return Arg{i, bits, bits} }

// BitsClear matches when no bit of bits is set in arg i.
func BitsClear(i int, bits uint64) Arg { return Arg{i, bits, 0} }

func (m Arg) match(args *[6]uint64) bool { return args[m.Index]&m.Mask == m.Value }

// Rule applies Action when every Args matcher holds (no Args: always).
type Rule struct {
	Args   []Arg
	Action Action
}

// Filter is a seccomp policy as plain data. Per syscall name, Rules are
// tried in order and the first that matches decides; a known syscall with
// no matching rule gets Default; a number the architecture's table does not
// know gets Unknown. Foreign architectures (and x32 on amd64) are always
// killed, before any rule.
type Filter struct {
	Name    string
	Default Action
	Unknown Action
	// Deny is the action Adjust installs for denied names.
	Deny  Action
	Rules map[string][]Rule
}

// Clone returns a deep copy.
func (f *Filter) Clone() *Filter {
	g := *f
	g.Rules = make(map[string][]Rule, len(f.Rules))
	for n, rs := range f.Rules {
		c := make([]Rule, len(rs))
		for i, r := range rs {
			c[i] = Rule{Args: append([]Arg(nil), r.Args...), Action: r.Action}
		}
		g.Rules[n] = c
	}
	return &g
}

// Adjust allows or denies whole syscalls by name, replacing any rule the
// preset had for them. Names are checked first; an unknown name is an error
// and nothing is changed.
func (f *Filter) Adjust(allow, deny []string) error {
	var bad []string
	for _, n := range append(append([]string(nil), allow...), deny...) {
		if !knownName(n) {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("seccomp: unknown syscall name(s): %s", strings.Join(bad, ", "))
	}
	// The filter is installed before the target's own execve, which must
	// pass it: denied, the program could never start.
	if slices.Contains(deny, "execve") {
		return errors.New("seccomp: execve cannot be denied: the program itself starts with it (the strict preset forbids new processes)")
	}
	if f.Rules == nil {
		f.Rules = map[string][]Rule{}
	}
	for _, n := range allow {
		f.Rules[n] = []Rule{{Action: Allow}}
	}
	d := f.Deny
	if d.Allows() {
		d = Errno(eperm)
	}
	for _, n := range deny {
		f.Rules[n] = []Rule{{Action: d}}
	}
	return nil
}

// WithNotify returns a copy in which every Errno action (including Default
// and Unknown) becomes Notify (remembering its errno), so the broker sees each denial and answers
// it with the errno from DenyErrno. Kill actions stay kills.
func (f *Filter) WithNotify() *Filter { return f.WithNotifyExcept() }

// WithNotifyExcept is WithNotify, except that the named syscalls keep
// their plain Errno and never wake the broker. Use it for expected probes
// such as clone3: glibc (2.34..2.36 at least) tries clone3 on every
// pthread_create and falls back on ENOSYS, so notifying it costs a broker
// round trip per thread and fills the report with non-events.
func (f *Filter) WithNotifyExcept(quiet ...string) *Filter {
	g := f.Clone()
	skip := map[string]bool{}
	for _, n := range quiet {
		skip[n] = true
		if len(g.Rules[n]) == 0 { // pin the default before it turns into Notify
			g.Rules[n] = []Rule{{Action: g.Default}}
		}
	}
	conv := func(a Action) Action {
		if a.kind == kindErrno {
			return Action{kind: kindNotify, errno: a.errno}
		}
		return a
	}
	g.Default, g.Unknown, g.Deny = conv(g.Default), conv(g.Unknown), conv(g.Deny)
	for n, rs := range g.Rules {
		if skip[n] {
			continue
		}
		for i := range rs {
			rs[i].Action = conv(rs[i].Action)
		}
	}
	return g
}

// Decide is the reference evaluation of the filter for one syscall on arch:
// the action the compiled program returns for (nr, args) with a matching
// architecture. Compile must agree with it.
func (f *Filter) Decide(arch string, nr int, args [6]uint64) Action {
	a, err := getArch(arch)
	if err != nil {
		return KillProcess
	}
	u := uint32(nr) // the kernel hands seccomp a 32-bit number
	if a.x32Bit && u >= x32SyscallBit {
		return KillProcess
	}
	name, ok := a.byNr[int(u)]
	if !ok {
		return f.Unknown
	}
	for _, r := range f.Rules[name] {
		ok := true
		for _, m := range r.Args {
			if !m.match(&args) {
				ok = false
				break
			}
		}
		if ok {
			return r.Action
		}
	}
	return f.Default
}

// DenyErrno returns the errno the un-notified filter gives (nr, args) on
// arch, and the syscall's name ("syscall_N" for numbers the table lacks).
// errno is 0 when the syscall would not fail with an errno (allowed, or
// killed); a broker must still refuse to CONTINUE it, so it should answer
// EPERM then.
func (f *Filter) DenyErrno(arch string, nr int, args [6]uint64) (errno int, name string) {
	name = SyscallName(arch, nr)
	if name == "" {
		name = fmt.Sprintf("syscall_%d", nr)
	}
	a := f.Decide(arch, nr, args)
	if a.kind == kindErrno || a.kind == kindNotify {
		return int(a.errno), name
	}
	return 0, name
}

// Names returns the syscall names that have rules, sorted.
func (f *Filter) Names() []string {
	var ns []string
	for n := range f.Rules {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func (f *Filter) validate() error {
	for _, a := range []Action{f.Default, f.Unknown} {
		if err := a.valid(); err != nil {
			return err
		}
	}
	for n, rs := range f.Rules {
		if !knownName(n) {
			return fmt.Errorf("seccomp: unknown syscall name %q", n)
		}
		for _, r := range rs {
			if err := r.Action.valid(); err != nil {
				return fmt.Errorf("%w (syscall %s)", err, n)
			}
			if len(r.Args) > maxArgsPerRule {
				return fmt.Errorf("seccomp: syscall %s: more than %d matchers in one rule", n, maxArgsPerRule)
			}
			for _, m := range r.Args {
				if m.Index < 0 || m.Index > 5 {
					return fmt.Errorf("seccomp: syscall %s: argument index %d out of range 0..5", n, m.Index)
				}
			}
		}
	}
	return nil
}
