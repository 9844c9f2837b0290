package netproxy

import "net/netip"

var (
	cgnat      = netip.MustParsePrefix("100.64.0.0/10")
	thisNet    = netip.MustParsePrefix("0.0.0.0/8")
	benchmark  = netip.MustParsePrefix("198.18.0.0/15") // also the fake range
	reserved4  = netip.MustParsePrefix("240.0.0.0/4")
	siteLocal6 = netip.MustParsePrefix("fec0::/10")
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	ietf4      = netip.MustParsePrefix("192.0.0.0/24")
	// IPv6 forms that carry an IPv4 address (local NAT64, 6to4,
	// IPv4-compatible): a host with such a gateway would reach the
	// embedded address. The discard prefix goes nowhere public.
	embeds4 = []netip.Prefix{
		netip.MustParsePrefix("64:ff9b:1::/48"),
		netip.MustParsePrefix("2002::/16"),
		netip.MustParsePrefix("::/96"),
	}
	reserved6 = []netip.Prefix{netip.MustParsePrefix("100::/64")}
)

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// nonPublic names the kind of a destination the broker must not dial for
// the sandbox (loopback, metadata and private services live there), or ""
// for a public address.
func nonPublic(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	if a.Zone() != "" {
		return "scoped"
	}
	a = a.Unmap()
	if nat64.Contains(a) {
		// The embedded IPv4 address is what a NAT64 gateway would reach.
		b := a.As16()
		if why := nonPublic(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
			return why
		}
	}
	switch {
	case a.IsUnspecified() || thisNet.Contains(a):
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast() || siteLocal6.Contains(a):
		return "link-local"
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "multicast/broadcast"
	case a.IsPrivate():
		return "private"
	case cgnat.Contains(a):
		return "shared (CGNAT)"
	case benchmark.Contains(a) || reserved4.Contains(a) || ietf4.Contains(a) || inAny(a, reserved6):
		return "reserved"
	case inAny(a, embeds4):
		return "IPv4 embedded in IPv6 (NAT64, 6to4, IPv4-compatible)"
	}
	return ""
}
