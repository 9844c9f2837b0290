package linux

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/airlock-sandbox/airlock/internal/landlock"
	"github.com/airlock-sandbox/airlock/internal/seccomp"
)

// addLandlock appends the prepared Landlock ops, mapping their slots onto
// the program's.
func (p *program) addLandlock(prep *landlock.Prepared) error {
	p.keep = append(p.keep, prep)
	var base [landlock.NumSlots]int8
	for i := range base {
		base[i] = p.slot()
	}
	for _, lo := range prep.Ops() {
		o := op{kind: kSys, nr: lo.Nr, args: lo.Args, in: -1, inArg: -1, out: -1,
			tolerate: lo.Tolerate, skipErr: int16(lo.SkipOnErr), skipOK: int16(lo.SkipOnOK),
			stage: p.stageIndex("landlock: " + lo.Stage)}
		for j, s := range lo.ArgFromSlot {
			if s < 0 {
				continue
			}
			if o.in >= 0 {
				return fmt.Errorf("landlock op %q reads two slots", lo.Stage)
			}
			o.in, o.inArg = base[s], int8(j)
		}
		if lo.Result >= 0 {
			o.out = base[lo.Result]
		}
		o.store = (*int32)(lo.StoreFDAt[0])
		o.store2 = (*int32)(lo.StoreFDAt[1])
		if lo.IgnoreErrno {
			o.flags |= fIgnoreErr
		}
		p.ops = append(p.ops, o)
	}
	return nil
}

// addSeccomp installs the filter; with notify, the listener fd goes to the
// broker over sock (SCM_RIGHTS) and is closed before exec.
func (p *program) addSeccomp(insns []seccomp.SockFilter, notify bool, sock int) {
	prog := seccomp.Fprog(insns)
	p.keep = append(p.keep, insns, prog)
	flags := uintptr(0)
	if notify {
		flags = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	s := p.slot()
	o := p.sys("seccomp", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(prog)))
	if !notify {
		return
	}
	o.out = s
	cbuf := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&cbuf[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(4))
	o.store = (*int32)(unsafe.Pointer(&cbuf[unix.CmsgLen(0)]))
	one := []byte{1}
	iov := &unix.Iovec{Base: &one[0]}
	iov.SetLen(1)
	msg := &unix.Msghdr{Iov: iov, Iovlen: 1, Control: &cbuf[0]}
	msg.SetControllen(len(cbuf))
	p.keep = append(p.keep, cbuf, one, iov, msg)
	p.sys("seccomp listener to broker", unix.SYS_SENDMSG, uintptr(sock), uintptr(unsafe.Pointer(msg)), 0)
	c := p.sys("seccomp listener to broker", unix.SYS_CLOSE, 0)
	c.in, c.inArg = s, 0
}

// recvFd receives the one fd (what) the child sends on sock.
func recvFd(sock int, what string) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			return -1, fmt.Errorf("no %s received", what)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return -1, fmt.Errorf("no %s received", what)
		}
		return fds[0], nil
	}
}
