package seccomp

import (
	"fmt"
	"sort"
)

// SockFilter is one classic BPF instruction, laid out like the kernel's
// struct sock_filter (and unix.SockFilter on Linux).
type SockFilter struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// Classic BPF opcodes used by the compiler.
const (
	opLdAbsW = 0x20 // BPF_LD|BPF_W|BPF_ABS
	opJa     = 0x05 // BPF_JMP|BPF_JA
	opJeqK   = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
	opJgeK   = 0x35 // BPF_JMP|BPF_JGE|BPF_K
	opAndK   = 0x54 // BPF_ALU|BPF_AND|BPF_K
	opRetK   = 0x06 // BPF_RET|BPF_K
)

// struct seccomp_data offsets (little-endian arches only: amd64, arm64).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// MaxInsns is the kernel's limit on a filter's length (BPF_MAXINSNS).
const MaxInsns = 4096

const maxArgsPerRule = 32 // keeps every rule's jumps within 8 bits

func stmt(code uint16, k uint32) SockFilter { return SockFilter{Code: code, K: k} }
func ret(a Action) SockFilter               { return stmt(opRetK, a.Ret()) }

// Compile translates f into a seccomp BPF program for arch ("amd64" or
// "arm64"). The program checks the architecture first (anything else is
// killed, which covers i386 int 0x80 on amd64), then kills x32 numbers on
// amd64, then dispatches on the syscall number with a binary search.
func (f *Filter) Compile(arch string) ([]SockFilter, error) {
	a, err := getArch(arch)
	if err != nil {
		return nil, err
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	prog := []SockFilter{
		stmt(opLdAbsW, offArch),
		{Code: opJeqK, Jt: 1, Jf: 0, K: a.auditArch},
		ret(KillProcess),
		stmt(opLdAbsW, offNr),
	}
	if a.x32Bit {
		prog = append(prog, SockFilter{Code: opJgeK, Jt: 0, Jf: 1, K: x32SyscallBit}, ret(KillProcess))
	}
	runs, err := f.runs(a)
	if err != nil {
		return nil, err
	}
	tree, err := emitTree(runs)
	if err != nil {
		return nil, err
	}
	prog = append(prog, tree...)
	if len(prog) > MaxInsns {
		return nil, fmt.Errorf("seccomp: program for %s has %d instructions, over the kernel limit %d", arch, len(prog), MaxInsns)
	}
	return prog, nil
}

// run is a range of syscall numbers [start, next run's start) sharing code.
type run struct {
	start uint32
	key   runKey       // equal keys = identical code
	code  []SockFilter // ends in RET
}

// runs maps every number 0..2^32-1 (below the x32 bit on amd64) to code.
func (f *Filter) runs(a *archInfo) ([]run, error) {
	var out []run
	for nr := 0; nr <= a.maxNr+1; nr++ { // maxNr+1 starts the open-ended unknown run
		var key runKey
		var rs []Rule
		name, ok := a.byNr[nr]
		switch {
		case !ok:
			key = simpleKey(f.Unknown)
		case len(f.Rules[name]) == 0:
			key = simpleKey(f.Default)
		case len(f.Rules[name][0].Args) == 0: // unconditional first rule
			key = simpleKey(f.Rules[name][0].Action)
		default:
			key, rs = runKey{rules: name}, f.Rules[name]
		}
		if len(out) > 0 && out[len(out)-1].key == key {
			continue
		}
		code := []SockFilter{stmt(opRetK, key.ret)}
		if rs != nil {
			var err error
			if code, err = ruleCode(rs, f.Default); err != nil {
				return nil, fmt.Errorf("seccomp: syscall %s: %w", name, err)
			}
		}
		out = append(out, run{start: uint32(nr), key: key, code: code})
	}
	return out, nil
}

// runKey identifies a leaf's code: a bare RET value, or a syscall's rules.
type runKey struct {
	ret   uint32
	rules string
}

func simpleKey(a Action) runKey { return runKey{ret: a.Ret()} }

// ruleCode emits first-match-wins checks for rs, falling back to def.
func ruleCode(rs []Rule, def Action) ([]SockFilter, error) {
	code := []SockFilter{ret(def)}
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if len(r.Args) == 0 { // unconditional: later rules are dead
			code = []SockFilter{ret(r.Action)}
			continue
		}
		var blk []SockFilter
		var fails []int // indexes of jumps whose false branch leaves the rule
		never := false
		for _, m := range r.Args {
			for half := 0; half < 2; half++ {
				mask, val := uint32(m.Mask), uint32(m.Value)
				if half == 1 {
					mask, val = uint32(m.Mask>>32), uint32(m.Value>>32)
				}
				if mask == 0 {
					if val != 0 {
						never = true
					}
					continue
				}
				blk = append(blk, stmt(opLdAbsW, uint32(offArgs+8*m.Index+4*half)))
				if mask != 0xffffffff {
					blk = append(blk, stmt(opAndK, mask))
				}
				fails = append(fails, len(blk))
				blk = append(blk, SockFilter{Code: opJeqK, K: val})
			}
		}
		if never { // value has bits outside the mask: the rule cannot match
			continue
		}
		blk = append(blk, ret(r.Action))
		for _, j := range fails {
			off := len(blk) - j - 1
			if off > 255 {
				return nil, fmt.Errorf("rule too long for a BPF jump")
			}
			blk[j].Jf = uint8(off)
		}
		code = append(blk, code...)
	}
	return code, nil
}

// emitTree builds a balanced binary search over runs (sorted by start).
// Code is position independent: every jump is forward and stays inside
// its subtree, so subtrees are built bottom-up and concatenated.
func emitTree(runs []run) ([]SockFilter, error) {
	if !sort.SliceIsSorted(runs, func(i, j int) bool { return runs[i].start < runs[j].start }) {
		return nil, fmt.Errorf("seccomp: internal error: runs not sorted")
	}
	var build func(lo, hi int) []SockFilter
	build = func(lo, hi int) []SockFilter {
		if lo == hi {
			return runs[lo].code
		}
		mid := (lo + hi + 1) / 2
		left, right := build(lo, mid-1), build(mid, hi)
		var out []SockFilter
		if len(left) <= 255 {
			out = append(out, SockFilter{Code: opJgeK, Jt: uint8(len(left)), K: runs[mid].start})
		} else { // too far for jt: hop via an unconditional jump
			out = append(out, SockFilter{Code: opJgeK, Jt: 0, Jf: 1, K: runs[mid].start},
				stmt(opJa, uint32(len(left))))
		}
		out = append(out, left...)
		return append(out, right...)
	}
	return build(0, len(runs)-1), nil
}
