package netproxy

import (
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func query(t *testing.T, id uint16, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	b.StartQuestions()
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAnswerDNS(t *testing.T) {
	p, err := New(Policy{Allow: []string{"pypi.org", "*.github.com"}, Deny: []string{"evil.github.com"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		typ    dnsmessage.Type
		rcode  dnsmessage.RCode
		answer bool
		logged bool
	}{
		{"pypi.org.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, false},
		{"PyPI.org.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, true, false},
		{"api.github.com.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, false},
		{"pypi.org.", dnsmessage.TypeMX, dnsmessage.RCodeSuccess, false, false},
		{"evil.github.com.", dnsmessage.TypeA, dnsmessage.RCodeNameError, false, true},
		{"6578666c.exfil.test.", dnsmessage.TypeA, dnsmessage.RCodeNameError, false, true},
		{"a\\032b.github.com.", dnsmessage.TypeA, dnsmessage.RCodeNameError, false, true},
	}
	for i, c := range cases {
		id := uint16(100 + i)
		reply, denied := p.answerDNS(query(t, id, c.name, c.typ))
		var m dnsmessage.Message
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("%s: bad reply: %v", c.name, err)
		}
		if m.Header.ID != id || !m.Header.Response || m.Header.RCode != c.rcode {
			t.Errorf("%s %v: header %+v, want rcode %v", c.name, c.typ, m.Header, c.rcode)
		}
		if len(m.Questions) != 1 || m.Questions[0].Name.String() != c.name {
			t.Errorf("%s: question not echoed: %+v", c.name, m.Questions)
		}
		if (len(m.Answers) == 1) != c.answer {
			t.Errorf("%s %v: %d answers, want answer=%v", c.name, c.typ, len(m.Answers), c.answer)
		}
		if (denied != nil) != c.logged {
			t.Errorf("%s: logged=%v, want %v", c.name, denied != nil, c.logged)
		}
		for _, a := range m.Answers {
			var ip netip.Addr
			switch b := a.Body.(type) {
			case *dnsmessage.AResource:
				ip = netip.AddrFrom4(b.A)
			case *dnsmessage.AAAAResource:
				ip = netip.AddrFrom16(b.AAAA)
			}
			got, ok := p.fake.lookup(ip)
			if !ok || got != "pypi.org" && got != "api.github.com" {
				t.Errorf("%s: answer %v maps back to %q %v", c.name, ip, got, ok)
			}
		}
	}
	// Without IPv6 in the namespace, AAAA is answered empty.
	p.noIPv6.Store(true)
	var m dnsmessage.Message
	if err := m.Unpack(must(p.answerDNS(query(t, 9, "pypi.org.", dnsmessage.TypeAAAA)))); err != nil || m.Header.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 {
		t.Errorf("AAAA without IPv6: %+v %v", m, err)
	}
	// Not a query, or garbage: no reply at all.
	if r, _ := p.answerDNS([]byte{1, 2, 3}); r != nil {
		t.Error("replied to garbage")
	}
	resp := query(t, 1, "pypi.org.", dnsmessage.TypeA)
	resp[2] |= 0x80 // QR bit
	if r, _ := p.answerDNS(resp); r != nil {
		t.Error("replied to a response")
	}
}

func must(b []byte, _ *Conn) []byte { return b }
