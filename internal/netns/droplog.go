package netns

import (
	"encoding/binary"
	"net/netip"
)

// Dropped is one packet the sandbox's rules dropped (UDP other than DNS,
// ICMP, ...), as reported over the drop log.
type Dropped struct {
	Proto string         // "udp", "icmp", "icmpv6", "sctp" or "proto N"
	Dst   netip.AddrPort // port 0 when the protocol has none
}

// nfnetlink_log message layout (linux/netfilter/nfnetlink_log.h).
const (
	nfnlSubsysULOG  = 4
	nfulnlMsgPacket = 0
	nfulnlMsgConfig = 1
	nfulaPayload    = 9
	nfulaCfgCmd     = 1
	nfulaCfgMode    = 2
	nfulaCfgQThresh = 5
	cfgCmdBind      = 1
	copyPacket      = 2
	dropLogGroup    = 0xa1a // nflog group the drop rule logs to
	nlmsgHdrLen     = 16
	nfgenHdrLen     = 4
)

// ParseDropLog decodes the packets in one read from Listeners.DropLog.
// Malformed parts are skipped: the data comes from the sandbox's namespace.
func ParseDropLog(b []byte) []Dropped {
	var out []Dropped
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		n := int(ne.Uint32(b[0:4]))
		if n < nlmsgHdrLen || n > len(b) {
			break
		}
		typ := ne.Uint16(b[4:6])
		msg := b[nlmsgHdrLen:n]
		b = b[min(len(b), (n+3)&^3):]
		if typ != nfnlSubsysULOG<<8|nfulnlMsgPacket || len(msg) < nfgenHdrLen {
			continue
		}
		attrs := msg[nfgenHdrLen:]
		for len(attrs) >= 4 {
			l := int(ne.Uint16(attrs[0:2]))
			t := ne.Uint16(attrs[2:4]) & 0x3fff
			if l < 4 || l > len(attrs) {
				break
			}
			if t == nfulaPayload {
				if d, ok := parsePacket(attrs[4:l]); ok {
					out = append(out, d)
				}
			}
			attrs = attrs[min(len(attrs), (l+3)&^3):]
		}
	}
	return out
}

// parsePacket reads protocol, destination address and port from an IPv4 or
// IPv6 packet (no IPv6 extension headers).
func parsePacket(p []byte) (Dropped, bool) {
	if len(p) < 1 {
		return Dropped{}, false
	}
	var proto byte
	var dst netip.Addr
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&0xf) * 4
		if len(p) < 20 || ihl < 20 || len(p) < ihl {
			return Dropped{}, false
		}
		proto, dst, l4 = p[9], netip.AddrFrom4([4]byte(p[16:20])), p[ihl:]
	case 6:
		if len(p) < 40 {
			return Dropped{}, false
		}
		proto, dst, l4 = p[6], netip.AddrFrom16([16]byte(p[24:40])), p[40:]
	default:
		return Dropped{}, false
	}
	d := Dropped{Proto: protoName(proto)}
	var port uint16
	if (proto == 6 || proto == 17 || proto == 132 || proto == 136) && len(l4) >= 4 {
		port = binary.BigEndian.Uint16(l4[2:4])
	}
	d.Dst = netip.AddrPortFrom(dst, port)
	return d, true
}

func protoName(p byte) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	case 136:
		return "udplite"
	}
	return "proto " + string(rune('0'+p/100)) + string(rune('0'+p/10%10)) + string(rune('0'+p%10))
}
