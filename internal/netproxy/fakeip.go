package netproxy

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// Synthetic address ranges. The DNS stub answers allowed names with
// addresses from these; the proxy maps them back to the name.
var (
	FakeNet4 = netip.MustParsePrefix("198.18.0.0/15")
	FakeNet6 = netip.MustParsePrefix("fd61:6972:6c6b::/64")
)

// fakeIPs hands out one stable IPv4 and IPv6 address per name for the run.
// Index i maps to FakeNet4 base + i and FakeNet6 base + i; 0 is never used.
type fakeIPs struct {
	mu     sync.Mutex
	byName map[string]uint32
	names  []string // names[i-1] has index i
	max    uint32
}

func newFakeIPs() *fakeIPs {
	// /15 has 2^17 addresses; skip .0 and the last one.
	return &fakeIPs{byName: map[string]uint32{}, max: 1<<17 - 2}
}

// assign returns the addresses for name, allocating on first use; ok is
// false when the range is exhausted.
func (f *fakeIPs) assign(name string) (v4, v6 netip.Addr, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, found := f.byName[name]
	if !found {
		if uint32(len(f.names)) >= f.max {
			return netip.Addr{}, netip.Addr{}, false
		}
		f.names = append(f.names, name)
		i = uint32(len(f.names))
		f.byName[name] = i
	}
	return addOffset(FakeNet4.Addr(), i), addOffset(FakeNet6.Addr(), i), true
}

// lookup maps a synthetic address back to its name.
func (f *fakeIPs) lookup(a netip.Addr) (string, bool) {
	a = a.Unmap()
	var i uint32
	switch {
	case FakeNet4.Contains(a):
		x, b := a.As4(), FakeNet4.Addr().As4()
		i = binary.BigEndian.Uint32(x[:]) - binary.BigEndian.Uint32(b[:])
	case FakeNet6.Contains(a):
		x := a.As16()
		if binary.BigEndian.Uint32(x[8:12]) != 0 {
			return "", false
		}
		i = binary.BigEndian.Uint32(x[12:16])
	default:
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i == 0 || i > uint32(len(f.names)) {
		return "", false
	}
	return f.names[i-1], true
}

// isFake says whether a is in a synthetic range.
func isFake(a netip.Addr) bool {
	a = a.Unmap()
	return FakeNet4.Contains(a) || FakeNet6.Contains(a)
}

func addOffset(base netip.Addr, i uint32) netip.Addr {
	b := base.As16()
	carry := uint64(i)
	for k := 15; k >= 0 && carry > 0; k-- {
		s := uint64(b[k]) + carry&0xff
		b[k] = byte(s)
		carry = carry>>8 + s>>8
	}
	a := netip.AddrFrom16(b)
	if base.Is4() {
		return a.Unmap()
	}
	return a
}
