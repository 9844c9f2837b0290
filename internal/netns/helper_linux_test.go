package netns_test

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/airlock-sandbox/airlock/internal/netns"
	"github.com/airlock-sandbox/airlock/internal/netns/netnstest"
)

func TestMain(m *testing.M) {
	netnstest.Register("capture", captureScenario)
	netnstest.Dispatch()
	os.Exit(m.Run())
}

type captureResult struct {
	TCP4Reply, TCP6Reply, DNSReply string
	TCPErr4, TCPErr6, DNSErr       string
	UDPOtherGot, UDPLoopGot        bool
	UDPOtherErr                    string
}

// captureScenario runs inside the sandbox: raw connects to arbitrary
// addresses, a DNS-port datagram, and a datagram to another UDP port.
func captureScenario() any {
	var r captureResult
	tcp := func(addr string) (string, string) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return "", err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("hello " + addr + "\n"))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "", err.Error()
		}
		return line, ""
	}
	r.TCP4Reply, r.TCPErr4 = tcp("203.0.113.7:8080")
	r.TCP6Reply, r.TCPErr6 = tcp("[2001:db8::7]:443")

	c, err := net.Dial("udp", "192.0.2.53:53")
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("ping"))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err == nil {
			r.DNSReply = string(buf[:n])
		} else {
			r.DNSErr = err.Error()
		}
		c.Close()
	} else {
		r.DNSErr = err.Error()
	}

	// Oracle for the UDP drop rule: a listener inside the sandbox on every
	// address (the local default route makes 192.0.2.9 local). Without the
	// drop rule the datagram to 192.0.2.9 would arrive; the loopback one
	// shows the listener works.
	pc, err := net.ListenPacket("udp4", "0.0.0.0:9999")
	if err == nil {
		s, _ := net.Dial("udp", "192.0.2.9:9999")
		if _, err := s.Write([]byte("x")); err != nil {
			r.UDPOtherErr = err.Error()
		}
		s.Close()
		pc.SetDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 8)
		_, _, err := pc.ReadFrom(buf)
		r.UDPOtherGot = err == nil
		s, _ = net.Dial("udp", "127.0.0.1:9999")
		s.Write([]byte("y"))
		s.Close()
		pc.SetDeadline(time.Now().Add(5 * time.Second))
		_, _, err = pc.ReadFrom(buf)
		r.UDPLoopGot = err == nil
		pc.Close()
	}
	return r
}

func TestHelperCapturesTCPAndDNS(t *testing.T) {
	l, sb := netnstest.Start(t, netns.Config{}, "capture")
	defer sb.Kill()
	if l.Capture6 == nil || l.DNS6 == nil {
		t.Fatal("no IPv6 sockets from the helper")
	}
	seen := make(chan netip.AddrPort, 2)
	serve := func(ln *net.TCPListener) {
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		defer c.Close()
		dst, err := netns.OriginalDst(c)
		if err != nil {
			t.Errorf("OriginalDst: %v", err)
		}
		seen <- dst
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("broker got " + line))
	}
	go serve(l.Capture4)
	go serve(l.Capture6)
	go func() {
		buf := make([]byte, 64)
		n, from, err := l.DNS4.ReadFrom(buf)
		if err == nil && string(buf[:n]) == "ping" {
			l.DNS4.WriteTo([]byte("pong"), from)
		}
	}()
	var r captureResult
	sb.Wait(t, &r)
	if r.TCP4Reply != "broker got hello 203.0.113.7:8080\n" || r.TCP6Reply != "broker got hello [2001:db8::7]:443\n" {
		t.Errorf("TCP not captured: %+v", r)
	}
	got := map[netip.AddrPort]bool{}
	for range 2 {
		got[<-seen] = true
	}
	for _, want := range []string{"203.0.113.7:8080", "[2001:db8::7]:443"} {
		if !got[netip.MustParseAddrPort(want)] {
			t.Errorf("original destination %s not reported; got %v", want, got)
		}
	}
	if r.DNSReply != "pong" {
		t.Errorf("UDP 53 to 192.0.2.53 not redirected to the stub: %+v", r)
	}
	if !r.UDPLoopGot {
		t.Errorf("oracle broken: loopback datagram not received: %+v", r)
	}
	t.Logf("datagram to 192.0.2.9:9999: sender saw %q", r.UDPOtherErr)
	if !strings.Contains(r.UDPOtherErr, "operation not permitted") {
		t.Errorf("sending to 192.0.2.9:9999 did not fail fast with EPERM: %q", r.UDPOtherErr)
	}
	if l.DropLog == nil {
		t.Error("no drop log from the helper")
	} else {
		l.DropLog.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 65536)
		want := netns.Dropped{Proto: "udp", Dst: netip.MustParseAddrPort("192.0.2.9:9999")}
		found := false
		for !found {
			n, err := l.DropLog.Read(buf)
			if err != nil {
				t.Errorf("drop log: %v before reporting %+v", err, want)
				break
			}
			for _, d := range netns.ParseDropLog(buf[:n]) {
				found = found || d == want
			}
		}
	}
	if r.UDPOtherGot {
		t.Errorf("datagram to 192.0.2.9:9999 was delivered; the drop rule is missing")
	}
}
