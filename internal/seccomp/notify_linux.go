package seccomp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// struct seccomp_notif and seccomp_notif_resp (linux/seccomp.h).
type notifData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

type notif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  notifData
}

type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notifSizes asks the kernel how large its structs are, so RECV gets a
// buffer big enough if a future kernel grows struct seccomp_notif.
func notifSizes() (notifLen int, err error) {
	var sz struct{ Notif, Resp, Data uint16 }
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&sz)))
	if e != 0 {
		return 0, fmt.Errorf("seccomp: GET_NOTIF_SIZES: %w", e)
	}
	if int(sz.Resp) != int(unsafe.Sizeof(notifResp{})) {
		return 0, fmt.Errorf("seccomp: kernel notif_resp size %d, want %d", sz.Resp, unsafe.Sizeof(notifResp{}))
	}
	return max(int(sz.Notif), int(unsafe.Sizeof(notif{}))), nil
}

// Serve answers seccomp user notifications on listenerFd (a filter made
// with WithNotify and installed with SECCOMP_FILTER_FLAG_NEW_LISTENER) until
// every task using the filter is gone. See ServeContext.
func Serve(listenerFd int, f *Filter, arch string, onDeny func(name string, args [6]uint64)) error {
	return ServeContext(context.Background(), listenerFd, func() (*Filter, error) { return f, nil }, arch, onDeny)
}

// ServeContext answers each notification with the errno DenyErrno gives
// (EPERM if the rule has none); it never lets a notified syscall continue.
// onDeny (may be nil) runs after the answer, once per denied call that the
// target actually received (a call interrupted by a signal and restarted is
// counted once). It owns listenerFd and closes it; it returns nil when all
// tasks using the filter have exited and been reaped, or ctx.Err() when
// ctx is done. It waits in the Go netpoller, so it costs nothing while no
// syscall is denied; filter is called at the first denial (building a
// Filter and its syscall tables costs more than most runs need).
func ServeContext(ctx context.Context, listenerFd int, filter func() (*Filter, error), arch string, onDeny func(name string, args [6]uint64)) error {
	if !slices.Contains(Arches(), arch) {
		unix.Close(listenerFd)
		return fmt.Errorf("seccomp: unsupported architecture %q (want amd64 or arm64)", arch)
	}
	size, err := notifSizes()
	if err != nil {
		unix.Close(listenerFd)
		return err
	}
	if err := unix.SetNonblock(listenerFd, true); err != nil {
		unix.Close(listenerFd)
		return fmt.Errorf("seccomp: listener: %w", err)
	}
	file := os.NewFile(uintptr(listenerFd), "seccomp-listener")
	defer file.Close()
	rc, err := file.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { file.Close() })
	defer stop()

	buf := make([]byte, size)
	var serveErr error
	rerr := rc.Read(func(fd uintptr) bool {
		for {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(pfd, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				serveErr = fmt.Errorf("seccomp: poll listener: %w", err)
				return true
			}
			if n == 0 {
				return false // nothing pending: wait in the netpoller
			}
			ev := pfd[0].Revents
			if ev&unix.POLLIN != 0 {
				if err := answerOne(int(fd), buf, filter, arch, onDeny); err != nil {
					serveErr = err
					return true
				}
				continue
			}
			return ev&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
		}
	})
	if serveErr != nil {
		return serveErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if rerr != nil && !errors.Is(rerr, os.ErrClosed) {
		return fmt.Errorf("seccomp: listener: %w", rerr)
	}
	return nil
}

// answerOne receives one notification and answers it with an errno.
func answerOne(fd int, buf []byte, filter func() (*Filter, error), arch string, onDeny func(string, [6]uint64)) error {
	clear(buf)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&buf[0])))
	switch e {
	case 0:
	case unix.ENOENT, unix.EINTR: // the target went away or was interrupted first
		return nil
	default:
		return fmt.Errorf("seccomp: NOTIF_RECV: %w", e)
	}
	n := (*notif)(unsafe.Pointer(&buf[0]))
	var errno int
	var name string
	if f, err := filter(); err == nil {
		errno, name = f.DenyErrno(arch, int(n.Data.Nr), n.Data.Args)
	} else {
		name = SyscallName(arch, int(n.Data.Nr))
	}
	if errno == 0 {
		errno = eperm
	}
	resp := notifResp{ID: n.ID, Error: -int32(errno)}
	_, _, e = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	switch e {
	case 0:
		if onDeny != nil {
			onDeny(name, n.Data.Args)
		}
	case unix.ENOENT: // interrupted by a signal; a restarted call notifies again
	default:
		return fmt.Errorf("seccomp: NOTIF_SEND: %w", e)
	}
	return nil
}
