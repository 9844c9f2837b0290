package netns

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Check runs the helper (exe must dispatch HelperArg to HelperMain) in a
// throwaway user and network namespace and reports whether the network
// policy can be enforced on this host. The error says which step failed,
// for `airlock check` and for a SetupError in strict mode.
func Check(exe string) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: socketpair: %w", err)
	}
	broker, child := os.NewFile(uintptr(fds[0]), "broker"), os.NewFile(uintptr(fds[1]), "helper")
	defer broker.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(exe, HelperArgs(Config{})...)
	cmd.Env = []string{}
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	err = cmd.Start()
	child.Close()
	if err != nil {
		return fmt.Errorf("netns: cannot create user and network namespaces: %w", err)
	}
	l, rerr := ReceiveListeners(broker)
	werr := cmd.Wait()
	l.Close()
	if rerr != nil {
		return rerr
	}
	if werr != nil {
		return fmt.Errorf("netns: helper: %v: %s", werr, strings.TrimSpace(stderr.String()))
	}
	return nil
}
