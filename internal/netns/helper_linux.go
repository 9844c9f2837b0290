package netns

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// brokerFD is the helper's end of the socketpair to the broker.
const brokerFD = 3

// HelperMain runs the in-namespace setup and exits: 0 when the broker got
// the sockets, 1 otherwise (the error also goes to the broker and stderr).
// It must run inside the sandbox's user and network namespaces.
func HelperMain() {
	sock := os.NewFile(brokerFD, "airlock-broker")
	err := helper(os.Args[1:], sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "airlock:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helper(args []string, sock *os.File) error {
	if sock == nil {
		return errors.New("netns: fd 3 (broker socket) is not open")
	}
	cfg, err := parseArgs(args)
	var msg message
	var files []*os.File
	if err == nil {
		msg.Names, files, err = setup(cfg)
	}
	if err != nil {
		msg = message{Error: err.Error()}
		files = nil
	}
	if serr := send(sock, msg, files); serr != nil && err == nil {
		err = serr
	}
	return err
}

func send(sock *os.File, msg message, files []*os.File) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(int(sock.Fd()), b, oob, nil, 0); err != nil {
		return fmt.Errorf("netns: send sockets to broker: %w", err)
	}
	return nil
}

// setup configures the namespace and returns the listening sockets.
func setup(cfg Config) ([]string, []*os.File, error) {
	if err := linkUp("lo"); err != nil {
		return nil, nil, fmt.Errorf("netns: bring lo up: %w", err)
	}
	var names []string
	var files []*os.File
	fail := func(err error) ([]string, []*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, nil, err
	}
	if !cfg.NoEgress {
		n, f, err := setupEgress(cfg)
		names, files = n, f
		if err != nil {
			return fail(err)
		}
	}
	for _, a := range cfg.Forward {
		network := "tcp4"
		if a.Addr().Is6() {
			network = "tcp6"
		}
		f, err := listenTCP(network, a.Addr().String(), int(a.Port()))
		if err != nil {
			return fail(fmt.Errorf("netns: listen for forward %s: %w", a, err))
		}
		names, files = append(names, nameForward), append(files, f)
	}
	for range cfg.Pool {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("netns: socket for the publish pool: %w", err))
		}
		names, files = append(names, namePool), append(files, os.NewFile(uintptr(fd), namePool))
	}
	return names, files, nil
}

// setupEgress makes every address local, installs the rules and creates
// the capture, DNS and proxy sockets.
func setupEgress(cfg Config) ([]string, []*os.File, error) {
	if err := addLocalDefault(unix.AF_INET); err != nil {
		return nil, nil, fmt.Errorf("netns: IPv4 local default route: %w", err)
	}
	// IPv6 is optional: without it, IPv6 connects fail (ENETUNREACH).
	v6 := addLocalDefault(unix.AF_INET6) == nil
	// The drop log is optional: without it drops are not reported.
	dropLog, logErr := openDropLog()
	if err := installRules(cfg, v6, logErr == nil); err != nil {
		return nil, nil, fmt.Errorf("netns: nftables rules (nf_tables may be unavailable in user namespaces on this host): %w", err)
	}
	type sockSpec struct {
		name, network, ip string
		port              int
	}
	specs := []sockSpec{
		{nameCapture4, "tcp4", "127.0.0.1", cfg.CapturePort},
		{nameDNS4, "udp4", "127.0.0.1", cfg.DNSPort},
		{nameHTTP, "tcp4", "127.0.0.1", cfg.HTTPPort},
		{nameDNSTCP4, "tcp4", "127.0.0.1", cfg.DNSPort},
	}
	if v6 {
		specs = append(specs, sockSpec{nameCapture6, "tcp6", "::1", cfg.CapturePort},
			sockSpec{nameDNS6, "udp6", "::1", cfg.DNSPort},
			sockSpec{nameDNSTCP6, "tcp6", "::1", cfg.DNSPort})
	}
	var names []string
	var files []*os.File
	for _, s := range specs {
		var f *os.File
		var err error
		if s.network[:3] == "tcp" {
			f, err = listenTCP(s.network, s.ip, s.port)
		} else {
			f, err = listenUDP(s.network, s.ip, s.port)
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, nil, fmt.Errorf("netns: listen %s %s:%d: %w", s.name, s.ip, s.port, err)
		}
		names = append(names, s.name)
		files = append(files, f)
	}
	if dropLog != nil {
		names = append(names, nameDropLog)
		files = append(files, dropLog)
	}
	return names, files, nil
}

func listenTCP(network, ip string, port int) (*os.File, error) {
	l, err := net.ListenTCP(network, &net.TCPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.File()
}

func listenUDP(network, ip string, port int) (*os.File, error) {
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(ip), Port: port})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.File()
}

func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// addLocalDefault adds "local default dev lo": every destination address is
// local, so connect() to any address reaches the OUTPUT hook (and then the
// redirect rules) instead of failing with ENETUNREACH.
func addLocalDefault(family int) error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	const hdr, rtm, attr = unix.NLMSG_HDRLEN, unix.SizeofRtMsg, 8
	b := make([]byte, hdr+rtm+attr)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.RTM_NEWROUTE)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	ne.PutUint32(b[8:], 1) // seq
	r := b[hdr:]
	r[0] = byte(family)
	r[1] = 0 // dst_len: default
	r[4] = unix.RT_TABLE_LOCAL
	r[5] = unix.RTPROT_STATIC
	r[6] = unix.RT_SCOPE_HOST
	r[7] = unix.RTN_LOCAL
	a := b[hdr+rtm:]
	ne.PutUint16(a[0:], 8)
	ne.PutUint16(a[2:], unix.RTA_OIF)
	ne.PutUint32(a[4:], uint32(lo.Index))
	return netlinkRequest(fd, b)
}

// netlinkRequest sends one request that asked for an acknowledgement and
// returns the kernel's answer as an error (nil when it succeeded).
func netlinkRequest(fd int, b []byte) error {
	if err := unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == syscall.NLMSG_ERROR && len(m.Data) >= 4 {
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
	return errors.New("no netlink acknowledgement")
}

// installRules adds table inet airlock with one nat/output chain:
//
//	udp dport 53            redirect to :DNSPort   (any destination)
//	tcp dport 53            redirect to :DNSPort
//	ip  daddr 127.0.0.0/8   accept                 (the sandbox's own loopback)
//	ip6 daddr ::1           accept
//	meta l4proto tcp        redirect to :CapturePort
//	[log group] drop        (other UDP, ICMP, SCTP ... to non-loopback)
//
// A nat chain sees only the first packet of each flow, so replies pass.
func installRules(cfg Config, v6, logDrops bool) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "airlock"})
	ch := c.AddChain(&nftables.Chain{
		Name: "out", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest,
	})
	rule := func(e ...expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e}) }
	port := func(p int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(p)) }
	l4 := func(proto byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		}
	}
	redirect := func(p int) []expr.Any {
		return []expr.Any{
			&expr.Immediate{Register: 1, Data: port(p)},
			&expr.Redir{RegisterProtoMin: 1},
		}
	}
	nfproto := func(f byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f}},
		}
	}
	accept := &expr.Verdict{Kind: expr.VerdictAccept}

	// DNS (UDP and TCP port 53) to anywhere -> the stub.
	e := l4(unix.IPPROTO_UDP)
	e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port(53)})
	rule(append(e, redirect(cfg.DNSPort)...)...)
	e = l4(unix.IPPROTO_TCP)
	e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port(53)})
	rule(append(e, redirect(cfg.DNSPort)...)...)

	// Loopback stays inside the sandbox.
	e = nfproto(unix.NFPROTO_IPV4)
	e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{127}}, accept)
	rule(e...)
	if v6 {
		e = nfproto(unix.NFPROTO_IPV6)
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net.IPv6loopback}, accept)
		rule(e...)
	}

	// Every other TCP connection -> the broker's capture listener.
	rule(append(l4(unix.IPPROTO_TCP), redirect(cfg.CapturePort)...)...)

	// Everything else leaving loopback goes nowhere.
	if logDrops {
		rule(&expr.Log{Key: 1 << unix.NFTA_LOG_GROUP, Group: dropLogGroup}, &expr.Verdict{Kind: expr.VerdictDrop})
	} else {
		rule(&expr.Verdict{Kind: expr.VerdictDrop})
	}
	return c.Flush()
}
