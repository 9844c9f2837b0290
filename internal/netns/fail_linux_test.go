package netns_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/airlock-sandbox/airlock/internal/netns"
	"golang.org/x/sys/unix"
)

func TestCheck(t *testing.T) {
	if err := netns.Check(os.Args[0]); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// Without privilege over the namespace the helper must fail, send its error
// to the broker, and hand over no sockets. Only meaningful unprivileged: as
// root the helper would configure the host's own network namespace.
func TestHelperFailsClosed(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("needs an unprivileged user (as root the helper would change the host's namespace)")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	broker, child := os.NewFile(uintptr(fds[0]), "broker"), os.NewFile(uintptr(fds[1]), "helper")
	defer broker.Close()
	cmd := exec.Command(os.Args[0], netns.HelperArgs(netns.Config{})...)
	cmd.ExtraFiles = []*os.File{child}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	l, err := netns.ReceiveListeners(broker)
	werr := cmd.Wait()
	if err == nil {
		l.Close()
		t.Fatal("helper without privilege delivered sockets")
	}
	if !strings.Contains(err.Error(), "netns:") || werr == nil {
		t.Errorf("error %q, exit %v: want the helper's own error and a non-zero exit", err, werr)
	}
	t.Logf("helper error as reported to the broker: %v", err)
}

// A helper that dies without a word leaves the broker with an error, not a hang.
func TestReceiveAfterHelperDied(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	broker := os.NewFile(uintptr(fds[0]), "broker")
	defer broker.Close()
	unix.Close(fds[1])
	if _, err := netns.ReceiveListeners(broker); err == nil || !strings.Contains(err.Error(), "without sending") {
		t.Errorf("ReceiveListeners after helper exit: %v", err)
	}
}
