package seccomp

import (
	"fmt"
	"sort"
	"sync"
)

// archInfo describes one target ABI.
type archInfo struct {
	name      string
	auditArch uint32
	x32Bit    bool // amd64: numbers >= 0x40000000 are the x32 ABI
	byNr      map[int]string
	byName    map[string]int
	maxNr     int
	nrs       []int // sorted
}

const (
	auditArchX86_64  = 0xc000003e
	auditArchAARCH64 = 0xc00000b7
	x32SyscallBit    = 0x40000000
)

var (
	archOnce sync.Once
	arches   map[string]*archInfo
)

func loadArches() {
	arches = map[string]*archInfo{
		"amd64": newArch("amd64", auditArchX86_64, true, syscallsAMD64[:]),
		"arm64": newArch("arm64", auditArchAARCH64, false, syscallsARM64[:]),
	}
}

// newArch indexes t, the names by number ("" where a number is unused):
// a generated array is static data, a map literal would be built at start.
func newArch(name string, audit uint32, x32 bool, t []string) *archInfo {
	a := &archInfo{name: name, auditArch: audit, x32Bit: x32, byNr: map[int]string{}, byName: map[string]int{}}
	for nr, n := range t {
		if n == "" {
			continue
		}
		a.byNr[nr] = n
		a.byName[n] = nr
		a.nrs = append(a.nrs, nr)
		if nr > a.maxNr {
			a.maxNr = nr
		}
	}
	sort.Ints(a.nrs)
	return a
}

func getArch(arch string) (*archInfo, error) {
	archOnce.Do(loadArches)
	a := arches[arch]
	if a == nil {
		return nil, fmt.Errorf("seccomp: unsupported architecture %q (want amd64 or arm64)", arch)
	}
	return a, nil
}

// Arches lists the supported architectures (GOARCH names).
func Arches() []string { return []string{"amd64", "arm64"} }

// SyscallName returns the name of syscall nr on arch, or "" if the
// table does not know it.
func SyscallName(arch string, nr int) string {
	a, err := getArch(arch)
	if err != nil {
		return ""
	}
	return a.byNr[nr]
}

// SyscallNumber returns the number of a named syscall on arch.
func SyscallNumber(arch, name string) (int, bool) {
	a, err := getArch(arch)
	if err != nil {
		return 0, false
	}
	nr, ok := a.byName[name]
	return nr, ok
}

// knownName reports whether name is a syscall on any supported arch.
func knownName(name string) bool {
	archOnce.Do(loadArches)
	for _, a := range arches {
		if _, ok := a.byName[name]; ok {
			return true
		}
	}
	return false
}
