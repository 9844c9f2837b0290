package netns

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// packetMsg wraps an IP packet the way nfnetlink_log delivers it.
func packetMsg(pkt []byte) []byte {
	ne := binary.NativeEndian
	attr := make([]byte, 4, 4+len(pkt)+3)
	ne.PutUint16(attr, uint16(4+len(pkt)))
	ne.PutUint16(attr[2:], nfulaPayload)
	attr = append(attr, pkt...)
	for len(attr)%4 != 0 {
		attr = append(attr, 0)
	}
	// An unrelated attribute first (NFULA_PACKET_HDR), as the kernel sends.
	other := []byte{8, 0, 1, 0, 0, 0x08, 0, 0}
	b := make([]byte, nlmsgHdrLen+nfgenHdrLen)
	b = append(append(b, other...), attr...)
	ne.PutUint32(b, uint32(len(b)))
	ne.PutUint16(b[4:], nfnlSubsysULOG<<8|nfulnlMsgPacket)
	return b
}

func ipv4(proto byte, dst string, l4 []byte) []byte {
	p := make([]byte, 20)
	p[0] = 0x45
	p[9] = proto
	a := netip.MustParseAddr(dst).As4()
	copy(p[16:], a[:])
	return append(p, l4...)
}

func ipv6(next byte, dst string, l4 []byte) []byte {
	p := make([]byte, 40)
	p[0] = 0x60
	p[6] = next
	a := netip.MustParseAddr(dst).As16()
	copy(p[24:], a[:])
	return append(p, l4...)
}

func TestParseDropLog(t *testing.T) {
	udp := []byte{0x30, 0x39, 0x27, 0x0f, 0, 8, 0, 0} // 12345 -> 9999
	cases := []struct {
		name string
		in   []byte
		want []Dropped
	}{
		{"udp4", packetMsg(ipv4(17, "192.0.2.9", udp)), []Dropped{{"udp", netip.MustParseAddrPort("192.0.2.9:9999")}}},
		{"icmp4", packetMsg(ipv4(1, "8.8.8.8", []byte{8, 0, 0, 0})), []Dropped{{"icmp", netip.MustParseAddrPort("8.8.8.8:0")}}},
		{"udp6", packetMsg(ipv6(17, "2001:db8::9", udp)), []Dropped{{"udp", netip.MustParseAddrPort("[2001:db8::9]:9999")}}},
		{"icmp6", packetMsg(ipv6(58, "2001:db8::1", nil)), []Dropped{{"icmpv6", netip.MustParseAddrPort("[2001:db8::1]:0")}}},
		{"proto", packetMsg(ipv4(47, "1.2.3.4", nil)), []Dropped{{"proto 047", netip.MustParseAddrPort("1.2.3.4:0")}}},
		{"two", append(packetMsg(ipv4(1, "1.1.1.1", nil)), packetMsg(ipv4(17, "1.0.0.1", udp))...),
			[]Dropped{{"icmp", netip.MustParseAddrPort("1.1.1.1:0")}, {"udp", netip.MustParseAddrPort("1.0.0.1:9999")}}},
		{"short udp", packetMsg(ipv4(17, "192.0.2.9", udp[:2])), []Dropped{{"udp", netip.MustParseAddrPort("192.0.2.9:0")}}},
		{"truncated ip", packetMsg([]byte{0x45, 0}), nil},
		{"bad ihl", packetMsg(append([]byte{0x4f}, make([]byte, 30)...)), nil},
		{"garbage", []byte{1, 2, 3}, nil},
		{"length past end", func() []byte { b := packetMsg(ipv4(1, "1.1.1.1", nil)); b[0] = 0xff; return b }(), nil},
	}
	for _, c := range cases {
		got := ParseDropLog(c.in)
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
		}
	}
}
