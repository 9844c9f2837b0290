package netproxy

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestFakeIPs(t *testing.T) {
	f := newFakeIPs()
	seen4, seen6 := map[netip.Addr]string{}, map[netip.Addr]string{}
	for i := range 1000 {
		name := fmt.Sprintf("h%d.test", i)
		v4, v6, ok := f.assign(name)
		if !ok || !FakeNet4.Contains(v4) || !FakeNet6.Contains(v6) || !v4.Is4() {
			t.Fatalf("assign(%s) = %v %v %v", name, v4, v6, ok)
		}
		if prev, dup := seen4[v4]; dup {
			t.Fatalf("%s and %s share %v", prev, name, v4)
		}
		if prev, dup := seen6[v6]; dup {
			t.Fatalf("%s and %s share %v", prev, name, v6)
		}
		seen4[v4], seen6[v6] = name, name
	}
	for a, name := range seen4 {
		if got, ok := f.lookup(a); !ok || got != name {
			t.Errorf("lookup(%v) = %q %v, want %q", a, got, ok, name)
		}
	}
	for a, name := range seen6 {
		if got, ok := f.lookup(a); !ok || got != name {
			t.Errorf("lookup(%v) = %q %v, want %q", a, got, ok, name)
		}
	}
	// Stable: the same name gets the same address again.
	a1, b1, _ := f.assign("h7.test")
	a2, b2, _ := f.assign("h7.test")
	if a1 != a2 || b1 != b2 {
		t.Error("mapping not stable")
	}
	for _, s := range []string{"198.18.0.0", "198.19.255.255", "198.18.100.0", "fd61:6972:6c6b::", "fd61:6972:6c6b:0:1::1", "1.2.3.4", "::ffff:198.18.3.232"} {
		a := netip.MustParseAddr(s)
		name, ok := f.lookup(a)
		if s == "::ffff:198.18.3.232" { // 1000th name, mapped form
			if !ok || name != "h999.test" {
				t.Errorf("lookup(%s) = %q %v", s, name, ok)
			}
			continue
		}
		if ok {
			t.Errorf("lookup(%s) = %q, want none", s, name)
		}
	}
}

func TestFakeIPsExhausted(t *testing.T) {
	f := newFakeIPs()
	f.max = 3
	for i := range 3 {
		if _, _, ok := f.assign(fmt.Sprint("n", i, ".test")); !ok {
			t.Fatal("early exhaustion")
		}
	}
	if _, _, ok := f.assign("n4.test"); ok {
		t.Error("assigned past the end of the range")
	}
	if _, _, ok := f.assign("n1.test"); !ok {
		t.Error("existing name refused after exhaustion")
	}
}

func TestAddOffsetCarry(t *testing.T) {
	if got := addOffset(netip.MustParseAddr("198.18.0.0"), 256+255); got != netip.MustParseAddr("198.18.1.255") {
		t.Errorf("got %v", got)
	}
	if got := addOffset(netip.MustParseAddr("198.18.0.255"), 1); got != netip.MustParseAddr("198.18.1.0") {
		t.Errorf("carry: got %v", got)
	}
	if got := addOffset(netip.MustParseAddr("198.18.0.0"), 1<<17-1); got != netip.MustParseAddr("198.19.255.255") {
		t.Errorf("top: got %v", got)
	}
}
