package seccomp

import (
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"testing"
)

type byteReader struct{ b []byte }

func (r *byteReader) u8() uint8 {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *byteReader) u64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = r.u8()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

// Masks and values chosen so random rules often match random args.
var fuzzMasks = []uint64{^uint64(0), 0xffffffff, 0xffffffff00000000, 1, 0x7E020080, 0x80000000_00000001, 0}
var fuzzVals = []uint64{0, 1, 2, tiocsti, 0x123<<32 | tiocsti, 38, 0xffffffff, 1 << 63}

func (r *byteReader) action() Action {
	switch r.u8() % 7 {
	case 0:
		return Allow
	case 1:
		return KillProcess
	case 2:
		return Trap
	case 3:
		return Notify
	case 4:
		return Log
	default:
		return Errno(1 + int(r.u8())%200)
	}
}

func (r *byteReader) value() uint64 {
	if r.u8()%3 == 0 {
		return r.u64()
	}
	return fuzzVals[int(r.u8())%len(fuzzVals)]
}

func fuzzFilter(r *byteReader, names []string) *Filter {
	f := &Filter{Default: r.action(), Unknown: r.action(), Rules: map[string][]Rule{}}
	nsys := int(r.u8())
	for i := 0; i < nsys; i++ {
		name := names[int(binary.LittleEndian.Uint16([]byte{r.u8(), r.u8()}))%len(names)]
		var rs []Rule
		for j := int(r.u8() % 5); j >= 0; j-- {
			var args []Arg
			for k := int(r.u8() % 4); k > 0; k-- {
				args = append(args, Arg{Index: int(r.u8() % 6), Mask: fuzzMasks[int(r.u8())%len(fuzzMasks)], Value: r.value()})
			}
			rs = append(rs, Rule{Args: args, Action: r.action()})
		}
		f.Rules[name] = rs
	}
	return f
}

func allNames() []string {
	seen := map[string]bool{}
	for _, arch := range Arches() {
		a, _ := getArch(arch)
		for n := range a.byName {
			seen[n] = true
		}
	}
	var ns []string
	for n := range seen {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func FuzzCompile(f *testing.F) {
	f.Add([]byte{5, 6, 3, 1, 0, 2, 1, 2, 0, 3, 4})
	f.Add([]byte("\x00\x01\xff\x10\x00\x03\x02\x01\x00\x05\x07\x04\x03\x02\x01"))
	f.Add(make([]byte, 200))
	names := allNames()
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, names, data) })
}

func fuzzOne(t *testing.T, names []string, data []byte) {
	{
		r := &byteReader{b: data}
		flt := fuzzFilter(r, names)
		for _, arch := range Arches() {
			prog, err := flt.Compile(arch)
			if err != nil {
				t.Fatalf("compile %s: %v", arch, err)
			}
			if err := checkProg(prog); err != nil {
				t.Fatalf("%s: invalid program: %v", arch, err)
			}
			a, _ := getArch(arch)
			// Every rule's syscall with args built from its own matchers
			// (so rules actually match), plus a few random calls.
			var probes []seccompData
			for name, rs := range flt.Rules {
				nr, ok := a.byName[name]
				if !ok {
					continue
				}
				for _, rule := range rs {
					var args [6]uint64
					for _, m := range rule.Args {
						args[m.Index] = args[m.Index]&^m.Mask | m.Value&m.Mask
					}
					probes = append(probes, seccompData{nr: uint32(nr), args: args})
				}
			}
			for i := 0; i < 8; i++ {
				d := seccompData{nr: uint32(r.u64() % uint64(a.maxNr+50))}
				if i == 7 {
					d.nr = uint32(r.u64())
				}
				for j := range d.args {
					d.args[j] = r.value()
				}
				probes = append(probes, d)
			}
			for _, d := range probes {
				d.arch = a.auditArch
				got, err := runBPF(prog, &d)
				if err != nil {
					t.Fatalf("%s nr %d: %v", arch, d.nr, err)
				}
				want := flt.Decide(arch, int(d.nr), d.args)
				if got != want.Ret() {
					t.Fatalf("%s nr %d (%s) args %x: BPF %#x, rules say %v", arch, d.nr, SyscallName(arch, int(d.nr)), d.args, got, want)
				}
				if ActionFromRet(got).Allows() && !want.Allows() {
					t.Fatalf("allowed a denied syscall")
				}
				// Foreign architecture: always killed.
				d.arch = auditArchI386
				if got, _ := runBPF(prog, &d); got != retKillProcess {
					t.Fatalf("%s: foreign arch got %#x", arch, got)
				}
			}
		}
	}
}

// The fuzz property over fixed pseudo-random inputs, so plain `go test`
// checks it too.
func TestCompileRandomRules(t *testing.T) {
	names := allNames()
	rng := rand.New(rand.NewPCG(1, 2))
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := 0; i < n; i++ {
		b := make([]byte, rng.IntN(2000))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		fuzzOne(t, names, b)
	}
}
