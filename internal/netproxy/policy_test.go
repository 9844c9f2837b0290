package netproxy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRuleParseErrors(t *testing.T) {
	for _, s := range []string{
		"", " ", "*", "*.com", "a..b", "-a.com", "a-.com", "exa mple.com", "host:0", "host:65536",
		"host:http", "10.0.0.0/33", "10.0.0.0/8:443", "fe80::1%eth0", "a.b:1:2", "*.*.com",
		"ex*ample.com", "1.2.3", "foo.123", "http://pypi.org", strings.Repeat("a", 64) + ".com",
	} {
		if r, err := newRule(s); err == nil {
			t.Errorf("newRule(%q) = %v, want error", s, r)
		}
	}
	if err := (Policy{Allow: []string{"ok.com", "bad host"}}).Validate(); err == nil || !strings.Contains(err.Error(), `"bad host"`) {
		t.Errorf("Validate error %v does not name the bad entry", err)
	}
}

func TestRuleParseCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"PyPI.org.":         "pypi.org",
		"*.GitHub.com":      "*.github.com",
		"example.com:443":   "example.com:443",
		"1.2.3.4":           "1.2.3.4",
		"1.2.3.4:80":        "1.2.3.4:80",
		"[2001:db8::1]:443": "[2001:db8::1]:443",
		"2001:db8::1":       "2001:db8::1",
		"10.1.2.3/8":        "10.0.0.0/8",
		"::ffff:1.2.3.4":    "1.2.3.4",
		"under_score.test":  "under_score.test",
		" spaced.example  ": "spaced.example",
	} {
		r, err := newRule(in)
		if err != nil || r.String() != want {
			t.Errorf("newRule(%q) = %q, %v; want %q", in, r.String(), err, want)
		}
	}
}

func TestMatcher(t *testing.T) {
	m, err := compile(Policy{
		Allow: []string{"pypi.org", "*.github.com", "api.example.com:443", "203.0.113.0/24", "[2001:db8::5]:22", "deny-me.github.com"},
		Deny:  []string{"evil.github.com", "*.gist.github.com", "api.example.com:8443", "203.0.113.66", "198.51.100.0/24"},
	})
	if err != nil {
		t.Fatal(err)
	}
	names := []struct {
		name string
		port uint16
		want bool
	}{
		{"pypi.org", 443, true},
		{"pypi.org", 22, true},
		{"www.pypi.org", 443, false}, // exact rule: no subdomains
		{"github.com", 443, false},   // wildcard: no apex
		{"api.github.com", 443, true},
		{"a.b.github.com", 443, true},
		{"notgithub.com", 443, false},
		{"xgithub.com", 443, false},
		{"evil.github.com", 443, false},  // deny wins
		{"x.gist.github.com", 80, false}, // deny wildcard wins
		{"gist.github.com", 80, true},    // deny wildcard does not cover apex
		{"api.example.com", 443, true},
		{"api.example.com", 80, false},   // port-specific allow
		{"api.example.com", 8443, false}, // denied port
		{"other.test", 443, false},
		{"github.com.evil.test", 443, false},
	}
	for _, c := range names {
		if got, why := m.checkName(c.name, c.port); got != c.want {
			t.Errorf("checkName(%s, %d) = %v (%s), want %v", c.name, c.port, got, why, c.want)
		}
	}
	addrs := []struct {
		addr string
		port uint16
		want bool
	}{
		{"203.0.113.9", 443, true},
		{"::ffff:203.0.113.9", 443, true},
		{"203.0.113.66", 443, false}, // deny wins
		{"203.0.114.1", 443, false},
		{"2001:db8::5", 22, true},
		{"2001:db8::5", 23, false},
		{"198.51.100.7", 443, false},
	}
	for _, c := range addrs {
		if got, why := m.checkAddr(netip.MustParseAddr(c.addr), c.port); got != c.want {
			t.Errorf("checkAddr(%s, %d) = %v (%s), want %v", c.addr, c.port, got, why, c.want)
		}
	}
	// Deny CIDRs also filter what an allowed name resolves to.
	if ok, _ := m.denyAddr(netip.MustParseAddr("198.51.100.7"), 443); ok {
		t.Error("deny CIDR did not refuse a resolved address")
	}
	resolve := []struct {
		name string
		want bool
	}{
		{"pypi.org", true}, {"api.example.com", true}, {"evil.github.com", false},
		{"x.gist.github.com", false}, {"exfil.test", false}, {"foo.github.com", true},
	}
	for _, c := range resolve {
		if got, why := m.nameMayResolve(c.name); got != c.want {
			t.Errorf("nameMayResolve(%s) = %v (%s), want %v", c.name, got, why, c.want)
		}
	}
}

func TestNonPublic(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.1.2.3", "::1", "169.254.169.254", "169.254.0.1", "fe80::1", "10.0.0.1",
		"172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12:3456::1", "100.64.0.1",
		"100.127.255.254", "0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "239.1.1.1", "ff02::1",
		"255.255.255.255", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
		"64:ff9b::7f00:1", "198.18.0.5", "fec0::1", "240.0.0.1",
		// IPv6 forms carrying IPv4 (local NAT64, 6to4, IPv4-compatible), discard
		"64:ff9b:1::a9fe:a9fe", "2002:a9fe:a9fe::", "::7f00:1", "100::1",
	}
	for _, s := range refused {
		if nonPublic(netip.MustParseAddr(s)) == "" {
			t.Errorf("%s treated as public", s)
		}
	}
	public := []string{"1.1.1.1", "8.8.8.8", "151.101.0.223", "2606:4700::1111", "172.32.0.1", "100.128.0.1", "64:ff9b::808:808", "203.0.113.1"}
	for _, s := range public {
		if why := nonPublic(netip.MustParseAddr(s)); why != "" {
			t.Errorf("%s refused as %s", s, why)
		}
	}
	m, _ := compile(Policy{AllowPrivate: true})
	if ok, _ := m.denyAddr(netip.MustParseAddr("10.0.0.1"), 80); !ok {
		t.Error("AllowPrivate did not permit 10.0.0.1")
	}
	m, _ = compile(Policy{})
	if ok, _ := m.denyAddr(netip.MustParseAddr("169.254.169.254"), 80); ok {
		t.Error("metadata address permitted without AllowPrivate")
	}
}
