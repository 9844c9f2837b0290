package netproxy

import (
	"golang.org/x/net/dns/dnsmessage"
)

// dnsTTL is short so that long-running programs re-ask now and then; the
// mapping itself is stable for the whole run.
const dnsTTL = 60

// answerDNS builds the stub's reply to one query. It never asks any other
// resolver: allowed names get synthetic addresses, everything else NXDOMAIN.
// A nil reply means drop the datagram (not a query). denied is set when a
// name was refused, for the log.
func (p *Proxy) answerDNS(query []byte) (reply []byte, denied *Conn) {
	var parser dnsmessage.Parser
	h, err := parser.Start(query)
	if err != nil || h.Response {
		return nil, nil
	}
	resp := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	qs, err := parser.AllQuestions()
	if err != nil || len(qs) != 1 {
		resp.RCode = dnsmessage.RCodeFormatError
		return buildDNS(resp, nil, nil), nil
	}
	q := qs[0]
	if h.OpCode != 0 {
		resp.RCode = dnsmessage.RCodeNotImplemented
		return buildDNS(resp, &q, nil), nil
	}
	name, ok := canonicalName(q.Name.String())
	why := "malformed name"
	if ok {
		ok, why = p.m.nameMayResolve(name)
	}
	if !ok || q.Class != dnsmessage.ClassINET {
		resp.RCode = dnsmessage.RCodeNameError
		if name == "" {
			name = q.Name.String()
		}
		return buildDNS(resp, &q, nil), &Conn{Proto: "dns", Name: name, Reason: why}
	}
	v4, v6, ok := p.fake.assign(name)
	if !ok {
		resp.RCode = dnsmessage.RCodeServerFailure
		return buildDNS(resp, &q, nil), &Conn{Proto: "dns", Name: name, Reason: "synthetic address range exhausted"}
	}
	resp.Authoritative = true
	var ans []dnsmessage.Resource
	rh := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: dnsTTL}
	switch q.Type {
	case dnsmessage.TypeA:
		ans = append(ans, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AResource{A: v4.As4()}})
	case dnsmessage.TypeAAAA:
		if p.noIPv6.Load() {
			break // no IPv6 inside: an empty answer makes clients use IPv4
		}
		ans = append(ans, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AAAAResource{AAAA: v6.As16()}})
	}
	return buildDNS(resp, &q, ans), nil
}

func buildDNS(h dnsmessage.Header, q *dnsmessage.Question, ans []dnsmessage.Resource) []byte {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), h)
	b.EnableCompression()
	if q != nil {
		b.StartQuestions()
		if b.Question(*q) != nil {
			return nil
		}
	}
	b.StartAnswers()
	for _, r := range ans {
		var err error
		switch body := r.Body.(type) {
		case *dnsmessage.AResource:
			err = b.AResource(r.Header, *body)
		case *dnsmessage.AAAAResource:
			err = b.AAAAResource(r.Header, *body)
		}
		if err != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
