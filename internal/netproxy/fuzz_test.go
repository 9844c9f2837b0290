package netproxy

import (
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// The stub parses bytes from the sandbox: it must never panic, and it only
// ever answers with a well-formed message.
func FuzzAnswerDNS(f *testing.F) {
	p, err := New(Policy{Allow: []string{"pypi.org", "*.github.com"}}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"pypi.org.", "x.github.com.", "exfil.test."} {
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7})
		b.StartQuestions()
		b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
		q, _ := b.Finish()
		f.Add(q)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, q []byte) {
		reply, _ := p.answerDNS(q)
		if reply == nil {
			return
		}
		var m dnsmessage.Message
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("malformed reply to %x: %v", q, err)
		}
		for _, a := range m.Answers {
			var ok bool
			switch b := a.Body.(type) {
			case *dnsmessage.AResource:
				_, ok = p.fake.lookup(netip.AddrFrom4(b.A))
			case *dnsmessage.AAAAResource:
				_, ok = p.fake.lookup(netip.AddrFrom16(b.AAAA))
			}
			if !ok {
				t.Fatalf("answer %v is not a synthetic address we issued", a)
			}
		}
	})
}

func FuzzRule(f *testing.F) {
	for _, s := range []string{"pypi.org", "*.github.com:443", "10.0.0.0/8", "[::1]:80", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := newRule(s)
		if err != nil {
			return
		}
		// A parsed rule prints as an entry that parses to the same rule.
		r2, err := newRule(r.String())
		if err != nil || r2 != r {
			t.Fatalf("%q -> %q -> %v, %v", s, r.String(), r2, err)
		}
	})
}
