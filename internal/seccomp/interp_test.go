package seccomp

import (
	"encoding/binary"
	"fmt"
)

// seccompData mirrors struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d *seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], d.nr)
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// runBPF is a small classic-BPF interpreter with the kernel's seccomp
// checker rules: only the opcodes seccomp accepts, aligned 32-bit loads
// inside seccomp_data, forward jumps in range, and the program must end in
// a RET. It returns the seccomp return value.
func runBPF(prog []SockFilter, d *seccompData) (uint32, error) {
	if len(prog) == 0 || len(prog) > MaxInsns {
		return 0, fmt.Errorf("bad length %d", len(prog))
	}
	mem := d.bytes()
	var A, X uint32
	var M [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		jump := func(cond bool) error {
			off := int(in.Jf)
			if cond {
				off = int(in.Jt)
			}
			if pc+1+off >= len(prog) {
				return fmt.Errorf("pc %d: jump out of range", pc)
			}
			pc += off
			return nil
		}
		var err error
		switch in.Code {
		case 0x20: // ld [k]
			if in.K%4 != 0 || in.K+4 > 64 {
				return 0, fmt.Errorf("pc %d: bad load offset %d", pc, in.K)
			}
			A = binary.LittleEndian.Uint32(mem[in.K:])
		case 0x00: // ld #k
			A = in.K
		case 0x01: // ldx #k
			X = in.K
		case 0x60: // ld M[k]
			A = M[in.K&15]
		case 0x02: // st M[k]
			M[in.K&15] = A
		case 0x54: // and #k
			A &= in.K
		case 0x44: // or #k
			A |= in.K
		case 0x87: // tax
			X = A
		case 0x07: // txa
			A = X
		case 0x05: // ja
			if pc+1+int(in.K) >= len(prog) {
				return 0, fmt.Errorf("pc %d: ja out of range", pc)
			}
			pc += int(in.K)
		case 0x15:
			err = jump(A == in.K)
		case 0x35:
			err = jump(A >= in.K)
		case 0x25:
			err = jump(A > in.K)
		case 0x45:
			err = jump(A&in.K != 0)
		case 0x06:
			return in.K, nil
		case 0x16:
			return A, nil
		default:
			return 0, fmt.Errorf("pc %d: opcode %#x not allowed", pc, in.Code)
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("fell off the end without RET")
}

// checkProg verifies static validity: every path is in range and the last
// instruction is a RET (so no path can fall off the end).
func checkProg(prog []SockFilter) error {
	if len(prog) == 0 || len(prog) > MaxInsns {
		return fmt.Errorf("length %d", len(prog))
	}
	if c := prog[len(prog)-1].Code; c != 0x06 && c != 0x16 {
		return fmt.Errorf("last instruction %#x is not RET", c)
	}
	for pc, in := range prog {
		switch in.Code {
		case 0x15, 0x35, 0x25, 0x45:
			if pc+1+int(in.Jt) >= len(prog) || pc+1+int(in.Jf) >= len(prog) {
				return fmt.Errorf("pc %d: conditional jump out of range", pc)
			}
		case 0x05:
			if pc+1+int(in.K) >= len(prog) {
				return fmt.Errorf("pc %d: ja out of range", pc)
			}
		case 0x20:
			if in.K%4 != 0 || in.K+4 > 64 {
				return fmt.Errorf("pc %d: load offset %d", pc, in.K)
			}
		}
	}
	return nil
}
