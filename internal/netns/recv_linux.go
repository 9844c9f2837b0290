package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ReceiveListeners reads the helper's message from the broker's end of the
// socketpair. It returns the helper's own error if setup failed, and an error
// if the helper exited without sending (the launcher must have closed its
// copy of the helper's end, or this blocks until the helper's end closes).
func ReceiveListeners(conn *os.File) (*Listeners, error) {
	buf := make([]byte, maxMessageLen)
	oob := make([]byte, unix.CmsgSpace(maxHelperFDs*4))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(int(conn.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("netns: receive from helper: %w", err)
	}
	var fds []int
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("netns: helper message: %w", err)
		}
		for _, c := range cmsgs {
			f, err := unix.ParseUnixRights(&c)
			if err == nil {
				fds = append(fds, f...)
			}
		}
	}
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if n == 0 {
		closeAll()
		return nil, errors.New("netns: helper exited without sending its sockets")
	}
	var msg message
	if err := json.Unmarshal(buf[:n], &msg); err != nil {
		closeAll()
		return nil, fmt.Errorf("netns: helper message: %w", err)
	}
	if msg.Error != "" {
		closeAll()
		return nil, errors.New(msg.Error)
	}
	if len(msg.Names) != len(fds) {
		closeAll()
		return nil, fmt.Errorf("netns: helper sent %d names for %d sockets", len(msg.Names), len(fds))
	}
	l := &Listeners{}
	for i, name := range msg.Names {
		if name == nameDropLog || name == namePool {
			// Non-blocking before NewFile, so reads go through the poller
			// and Close interrupts them.
			unix.SetNonblock(fds[i], true)
		}
		f := os.NewFile(uintptr(fds[i]), name)
		var err error
		switch name {
		case nameCapture4, nameCapture6, nameHTTP, nameDNSTCP4, nameDNSTCP6, nameForward:
			var ln net.Listener
			if ln, err = net.FileListener(f); err == nil {
				tl, ok := ln.(*net.TCPListener)
				if !ok {
					ln.Close()
					err = errors.New("not a TCP listener")
				}
				switch name {
				case nameCapture4:
					l.Capture4 = tl
				case nameCapture6:
					l.Capture6 = tl
				case nameDNSTCP4:
					l.DNSTCP4 = tl
				case nameDNSTCP6:
					l.DNSTCP6 = tl
				case nameForward:
					l.Forward = append(l.Forward, tl)
				default:
					l.HTTP = tl
				}
			}
		case nameDropLog:
			l.DropLog, f = f, nil
		case namePool:
			l.Pool, f = append(l.Pool, f), nil
		case nameDNS4, nameDNS6:
			var pc net.PacketConn
			if pc, err = net.FilePacketConn(f); err == nil {
				uc, ok := pc.(*net.UDPConn)
				if !ok {
					pc.Close()
					err = errors.New("not a UDP socket")
				}
				if name == nameDNS4 {
					l.DNS4 = uc
				} else {
					l.DNS6 = uc
				}
			}
		default:
			err = errors.New("unknown socket name")
		}
		if f != nil {
			f.Close()
		}
		if err != nil {
			for _, fd := range fds[i+1:] {
				unix.Close(fd)
			}
			l.Close()
			return nil, fmt.Errorf("netns: socket %q from helper: %w", name, err)
		}
	}
	// The egress set comes whole or not at all.
	partial := l.Capture4 != nil || l.DNS4 != nil || l.HTTP != nil
	if (partial && !l.Egress()) || (!partial && len(l.Forward) == 0 && len(l.Pool) == 0) {
		l.Close()
		return nil, errors.New("netns: helper sent an incomplete socket set")
	}
	return l, nil
}
