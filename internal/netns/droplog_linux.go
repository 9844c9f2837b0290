package netns

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openDropLog subscribes a netfilter netlink socket in this namespace to the
// drop rule's log group. The broker reads it after the helper is gone: the
// socket stays bound to the namespace it was created in.
func openDropLog() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	// Bind the group, then ask for the first 128 bytes of each packet.
	mode := binary.BigEndian.AppendUint32(nil, 128)
	mode = append(mode, copyPacket, 0)
	// Queue threshold 1: report each packet at once, not after a second.
	qthresh := binary.BigEndian.AppendUint32(nil, 1)
	for i, attr := range [][]byte{nlattr(nfulaCfgCmd, []byte{cfgCmdBind}), nlattr(nfulaCfgMode, mode), nlattr(nfulaCfgQThresh, qthresh)} {
		if err := nfulnlConfig(fd, uint32(i+1), attr); err != nil {
			return nil, err
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	ok = true
	return os.NewFile(uintptr(fd), "airlock-droplog"), nil
}

func nlattr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nfulnlConfig(fd int, seq uint32, attr []byte) error {
	b := make([]byte, nlmsgHdrLen+nfgenHdrLen, nlmsgHdrLen+nfgenHdrLen+len(attr))
	ne := binary.NativeEndian
	b = append(b, attr...)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], nfnlSubsysULOG<<8|nfulnlMsgConfig)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(b[8:], seq)
	b[16] = unix.AF_UNSPEC
	b[17] = 0 // NFNETLINK_V0
	binary.BigEndian.PutUint16(b[18:], dropLogGroup)
	if err := netlinkRequest(fd, b); err != nil {
		return fmt.Errorf("nfnetlink_log: %w", err)
	}
	return nil
}
