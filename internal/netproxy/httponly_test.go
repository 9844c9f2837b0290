package netproxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// The HTTP proxy alone (the macOS backend's egress): CONNECT to an allowed
// destination reaches it, to anything else is refused and reaches nothing.
func TestServeHTTPProxyOnly(t *testing.T) {
	var hits [2]atomic.Int32
	var ports [2]int
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		go func(i int) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				hits[i].Add(1)
				c.Write([]byte("hello\n"))
				c.Close()
			}
		}(i)
	}
	px, err := New(Policy{Allow: []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}, AllowPrivate: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	pl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := px.ServeHTTPProxy(pl); err != nil {
		t.Fatal(err)
	}
	connect := func(port int) string {
		c, err := net.Dial("tcp", pl.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port, port)
		r := bufio.NewReader(c)
		status, _ := r.ReadString('\n')
		for {
			l, err := r.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		body, _ := r.ReadString('\n')
		return status + body
	}
	if got := connect(ports[0]); !strings.Contains(got, " 200") || !strings.Contains(got, "hello") {
		t.Errorf("allowed CONNECT: %q", got)
	}
	if got := connect(ports[1]); !strings.Contains(got, " 403") {
		t.Errorf("denied CONNECT: %q", got)
	}
	if hits[1].Load() != 0 {
		t.Errorf("the denied server saw %d connections", hits[1].Load())
	}
	if hits[0].Load() != 1 {
		t.Errorf("the allowed server saw %d connections, want 1", hits[0].Load())
	}
	if env := ProxyEnvFor(4321); !strings.Contains(strings.Join(env, " "), "HTTPS_PROXY=http://127.0.0.1:4321") {
		t.Errorf("env: %v", env)
	}
}
