package netproxy

import (
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"
)

// clientHello builds a TLS 1.2 ClientHello record by hand, with the given
// extensions (type, data) after a server_name extension for names.
func clientHello(names []string, exts ...[2][]byte) []byte {
	u16 := func(v int) []byte { return []byte{byte(v >> 8), byte(v)} }
	var list []byte
	for _, n := range names {
		list = append(append(append(list, 0), u16(len(n))...), n...)
	}
	all := [][2][]byte{{{0, 0}, append(u16(len(list)), list...)},
		{{0, 0x0a}, {0, 4, 0, 0x1d, 0, 0x17}}, {{0, 0x0b}, {1, 0}}, {{0, 0x0d}, {0, 4, 4, 1, 8, 4}}}
	all = append(all, exts...)
	var eb []byte
	for _, e := range all {
		eb = append(append(append(eb, e[0]...), u16(len(e[1]))...), e[1]...)
	}
	body := []byte{3, 3}
	r := make([]byte, 32)
	rand.Read(r)
	body = append(append(body, r...), 0, 0, 4, 0xc0, 0x2f, 0xc0, 0x30, 1, 0)
	body = append(append(body, u16(len(eb))...), eb...)
	msg := append([]byte{1, 0}, u16(len(body))...)
	msg = append(msg, body...)
	return append(append([]byte{0x16, 3, 1}, u16(len(msg))...), msg...)
}

// What the broker cannot read as a ClientHello must not pass its SNI
// check: nginx and HAProxy read evil.test in each of these hellos, which
// Go's parser rejects (an attack review's finding). The upstream is dialled
// before the check on the tunnel path, so "refused" is: no byte reached it.
func TestUnreadableHelloRefused(t *testing.T) {
	defer func(w time.Duration) { helloWait = w }(helloWait)
	helloWait = 300 * time.Millisecond
	port, got, _ := rawUpstream(t)
	p, l := tunnelProxy(t, Options{SNIPorts: []int{port}})
	send := func(what string, write func(net.Conn)) int {
		t.Helper()
		c, _ := tunnelTo(t, l, port)
		defer c.Close()
		write(c)
		select {
		case b := <-got:
			return len(b)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the upstream connection never ended", what)
			return 0
		}
	}
	raw := func(b []byte) func(net.Conn) { return func(c net.Conn) { c.Write(b); c.(*net.TCPConn).CloseWrite() } }
	for what, hello := range map[string][]byte{
		"unknown extension twice": clientHello([]string{"evil.test"}, [2][]byte{{0x0a, 0x0a}, nil}, [2][]byte{{0x0a, 0x0a}, nil}),
		"trailing dot":            clientHello([]string{"evil.test."}),
		"SCT extension with data": clientHello([]string{"evil.test"}, [2][]byte{{0, 0x12}, {0}}),
		"two server_name lists":   clientHello([]string{"evil.test"}, [2][]byte{{0, 0}, {0, 10, 0, 0, 7, 'o', 'k', '.', 't', 'e', 's', 't'}}),
		"two names in one list":   clientHello([]string{"evil.test", "ok.test"}),
	} {
		if n := send(what, raw(hello)); n != 0 {
			t.Errorf("%s: %d bytes reached the upstream", what, n)
		}
	}
	if n := send("not TLS", raw([]byte("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"))); n != 0 {
		t.Errorf("not TLS: %d bytes reached the upstream", n)
	}
	// A hello not whole before the deadline: its first byte, then a stall.
	hello := clientHello([]string{"evil.test"})
	if n := send("stalled hello", func(c net.Conn) {
		c.Write(hello[:1])
		time.Sleep(2 * helloWait)
		c.Write(hello[1:])
		c.(*net.TCPConn).CloseWrite()
	}); n != 0 {
		t.Errorf("stalled hello: %d bytes reached the upstream", n)
	}
	// Silence past the deadline, then a normal handshake for evil.test.
	if n := send("late hello", func(c net.Conn) {
		time.Sleep(2 * helloWait)
		c.Write(clientHello([]string{"evil.test"}))
		c.(*net.TCPConn).CloseWrite()
	}); n != 0 {
		t.Errorf("late hello: %d bytes reached the upstream", n)
	}
	// The oracle: a readable hello for the tunnel's own name gets through.
	if n := send("readable hello", raw(clientHello([]string{"ok.test"}))); n == 0 {
		t.Errorf("oracle broken: a readable hello for ok.test did not reach the upstream")
	}
	var logged int
	for _, e := range p.Log() {
		if !e.Allowed && (strings.Contains(e.Reason, "ClientHello") || strings.Contains(e.Reason, "not TLS")) {
			logged++
		}
	}
	if logged != 8 {
		t.Errorf("%d refusals logged, want 8: %+v", logged, p.Log())
	}
}
