package netproxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Policy is the egress policy. Allow and Deny entries are host names
// ("pypi.org"), wildcards ("*.github.com": any subdomain, not the apex), IP
// addresses or CIDR prefixes, each optionally with ":port" (CIDRs take no
// port). Deny wins over Allow.
type Policy struct {
	Allow []string
	Deny  []string
	// AllowPrivate permits loopback, link-local, private and other
	// non-public destinations (off by default, even for allowed names).
	AllowPrivate bool
}

// rule is one parsed Allow or Deny entry.
type rule struct {
	host     string       // lower case, no trailing dot; "" for IP rules
	wildcard bool         // host is a suffix: matches subdomains only
	prefix   netip.Prefix // valid for IP and CIDR rules
	port     uint16       // 0: any port
}

// newRule parses one Allow or Deny entry.
func newRule(s string) (rule, error) {
	r, err := parseRule(strings.TrimSpace(s))
	if err != nil {
		return rule{}, fmt.Errorf("network rule %q: %w", s, err)
	}
	return r, nil
}

func parseRule(s string) (rule, error) {
	if s == "" {
		return rule{}, fmt.Errorf("empty")
	}
	if strings.Contains(s, "://") {
		return rule{}, fmt.Errorf("a URL: give the host name alone (and :PORT)")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return rule{}, fmt.Errorf("bad CIDR (CIDR rules take no port)")
		}
		return rule{prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return rule{}, fmt.Errorf("zones are not allowed")
		}
		return rule{prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
	}
	host, port := s, uint16(0)
	if strings.Contains(s, ":") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return rule{}, fmt.Errorf("want host, host:port, IP, [IPv6]:port or CIDR")
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return rule{}, fmt.Errorf("bad port %q", p)
		}
		host, port = h, uint16(n)
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" {
				return rule{}, fmt.Errorf("zones are not allowed")
			}
			return rule{prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), port: port}, nil
		}
	}
	r := rule{port: port}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		r.wildcard, host = true, rest
	}
	name, ok := canonicalName(host)
	if !ok {
		return rule{}, fmt.Errorf("bad host name %q", host)
	}
	if r.wildcard && !strings.Contains(name, ".") {
		return rule{}, fmt.Errorf("wildcard must cover a domain with at least two labels")
	}
	r.host = name
	return r, nil
}

// canonicalName lower-cases and checks a DNS name: letters, digits, '-' and
// '_', labels of 1-63 bytes, 253 bytes in all, one optional trailing dot.
// Anything else (including '*' and spaces) is refused, so a name can never
// smuggle other syntax into logs or requests.
func canonicalName(s string) (string, bool) {
	// ASCII only: Unicode case folding maps other letters to ASCII ones
	// (U+212A KELVIN SIGN lowers to "k"), which would let a name pass for
	// one it is not.
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "", false
		}
	}
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > 253 {
		return "", false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	// All-numeric last label would look like an IP address.
	if last := s[strings.LastIndexByte(s, '.')+1:]; strings.Trim(last, "0123456789") == "" {
		return "", false
	}
	return s, true
}

func (r rule) matchName(name string, port uint16) bool {
	if r.host == "" || (r.port != 0 && r.port != port) {
		return false
	}
	if r.wildcard {
		return strings.HasSuffix(name, "."+r.host)
	}
	return name == r.host
}

func (r rule) matchAddr(a netip.Addr, port uint16) bool {
	return r.host == "" && (r.port == 0 || r.port == port) && r.prefix.Contains(a.Unmap())
}

func (r rule) String() string {
	var s string
	switch {
	case r.host == "":
		if r.prefix.IsSingleIP() {
			s = r.prefix.Addr().String()
			if r.port != 0 && r.prefix.Addr().Is6() {
				s = "[" + s + "]"
			}
		} else {
			s = r.prefix.String()
		}
	case r.wildcard:
		s = "*." + r.host
	default:
		s = r.host
	}
	if r.port != 0 {
		s += ":" + strconv.Itoa(int(r.port))
	}
	return s
}

// matcher is a compiled Policy.
type matcher struct {
	allow, deny  []rule
	allowPrivate bool
	permit       func(netip.Addr) bool // tests: treat these as public
}

func compile(p Policy) (*matcher, error) {
	m := &matcher{allowPrivate: p.AllowPrivate}
	for _, s := range p.Allow {
		r, err := newRule(s)
		if err != nil {
			return nil, err
		}
		m.allow = append(m.allow, r)
	}
	for _, s := range p.Deny {
		r, err := newRule(s)
		if err != nil {
			return nil, err
		}
		m.deny = append(m.deny, r)
	}
	return m, nil
}

// Validate reports the first malformed entry of p.
func (p Policy) Validate() error {
	_, err := compile(p)
	return err
}

// checkName decides a connection to name:port. The reason names the rule.
func (m *matcher) checkName(name string, port uint16) (bool, string) {
	for _, r := range m.deny {
		if r.matchName(name, port) {
			return false, "denied by " + r.String()
		}
	}
	for _, r := range m.allow {
		if r.matchName(name, port) {
			return true, "allowed by " + r.String()
		}
	}
	return false, "not in the allow list"
}

// checkAddr decides a connection to a literal address (no name known).
func (m *matcher) checkAddr(a netip.Addr, port uint16) (bool, string) {
	if ok, why := m.denyAddr(a, port); !ok {
		return false, why
	}
	for _, r := range m.allow {
		if r.matchAddr(a, port) {
			return true, "allowed by " + r.String()
		}
	}
	return false, "address not in the allow list"
}

// denyAddr applies deny IP rules and the private-range filter to an address
// a name resolved to (or a literal one).
func (m *matcher) denyAddr(a netip.Addr, port uint16) (bool, string) {
	for _, r := range m.deny {
		if r.matchAddr(a, port) {
			return false, "denied by " + r.String()
		}
	}
	if !m.allowPrivate && (m.permit == nil || !m.permit(a)) {
		if why := nonPublic(a); why != "" {
			return false, why + " address refused"
		}
	}
	return true, ""
}

// nameMayResolve says whether the DNS stub answers for name: some allow rule
// covers it on some port and no port-less deny rule covers it.
func (m *matcher) nameMayResolve(name string) (bool, string) {
	for _, r := range m.deny {
		if r.port == 0 && r.matchName(name, 0) {
			return false, "denied by " + r.String()
		}
	}
	for _, r := range m.allow {
		if r.host != "" && r.matchName(name, r.port) {
			return true, ""
		}
	}
	return false, "not in the allow list"
}
