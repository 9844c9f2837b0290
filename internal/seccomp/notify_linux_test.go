package seccomp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// notifyChild installs the notifying default filter on its (locked)
// thread, hands the listener to the parent over fd 3, then makes denied
// and allowed calls from that thread.
func notifyChild(ctl *os.File, res childResult) {
	f, _ := Preset("default")
	prog, err := f.WithNotify().Compile(runtime.GOARCH)
	if err != nil {
		panic(err)
	}
	lfd, err := Install(Fprog(prog), unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	if err := unix.Sendmsg(int(ctl.Fd()), []byte{'L'}, unix.UnixRights(lfd), nil, 0); err != nil {
		panic(err)
	}
	unix.Close(lfd) // the target keeps no handle on the channel
	res["keyctl"] = keyctlCall()
	res["io_uring_setup"] = ioUringCall()
	res["socket_alg"] = socketCall(38, unix.SOCK_SEQPACKET)
	res["socket_unix"] = socketCall(unix.AF_UNIX, unix.SOCK_STREAM)
	_, _, e := unix.Syscall(unix.SYS_GETPID, 0, 0, 0)
	res["getpid"] = int(e)
	res["keyctl2"] = keyctlCall()
}

func recvFd(t *testing.T, ctl *os.File) int {
	t.Helper()
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(ctl.Fd()), buf, oob, 0)
	if err != nil {
		t.Fatalf("recvmsg: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control message: %v (%d)", err, len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("unix rights: %v", err)
	}
	return fds[0]
}

// A target's denied syscalls reach the broker through the listener; the
// broker answers with the rule's errno, counts them, and Serve returns
// once the target is gone.
func TestLiveNotifyServe(t *testing.T) {
	requireSeccomp(t)
	f, _ := Preset("default")
	nf := f.WithNotify()
	cmd, ctl := startChild(t, "notify", nil)
	lfd := recvFd(t, ctl)

	var mu sync.Mutex
	counts := map[string]int{}
	var sockArgs [6]uint64
	done := make(chan error, 1)
	go func() {
		done <- Serve(lfd, nf, runtime.GOARCH, func(name string, args [6]uint64) {
			mu.Lock()
			defer mu.Unlock()
			counts[name]++
			if name == "socket" {
				sockArgs = args
			}
		})
	}()

	var res childResult
	if err := json.NewDecoder(ctl).Decode(&res); err != nil {
		cmd.Wait()
		t.Fatalf("child result: %v", err)
	}
	ctl.Write([]byte{1})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(60 * time.Second): // hang guard, not a speed check
		t.Fatal("Serve did not return after the target exited")
	}
	t.Logf("child %v, broker saw %v", res, counts)

	want := map[string]int{
		"keyctl": int(unix.EPERM), "keyctl2": int(unix.EPERM), "io_uring_setup": int(unix.ENOSYS),
		"socket_alg": int(unix.EPERM), "socket_unix": 0, "getpid": 0,
	}
	for k, v := range want {
		if res[k] != v {
			t.Errorf("child %s: errno %v, want %v", k, unix.Errno(res[k]), unix.Errno(v))
		}
	}
	wantCounts := map[string]int{"keyctl": 2, "io_uring_setup": 1, "socket": 1}
	mu.Lock()
	defer mu.Unlock()
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("broker count %s = %d, want %d", k, counts[k], v)
		}
	}
	for k := range counts {
		if _, ok := wantCounts[k]; !ok {
			t.Errorf("broker saw unexpected denial %s (%d)", k, counts[k])
		}
	}
	if sockArgs[0] != 38 {
		t.Errorf("socket denial args %x, want family 38 first", sockArgs)
	}
}

// notifyHoldChild installs a notifying filter, hands over the listener and
// waits for the parent without making a denied call.
func notifyHoldChild(ctl *os.File) {
	f, _ := Preset("default")
	prog, _ := f.WithNotify().Compile(runtime.GOARCH)
	lfd, err := Install(Fprog(prog), unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if err != nil {
		os.Exit(2)
	}
	unix.Sendmsg(int(ctl.Fd()), []byte{'L'}, unix.UnixRights(lfd), nil, 0)
	unix.Close(lfd)
	var b [1]byte
	ctl.Read(b[:])
	os.Exit(0)
}

// Cancelling the context stops Serve while the target is still alive.
func TestLiveServeContextCancel(t *testing.T) {
	requireSeccomp(t)
	f, _ := Preset("default")
	cmd, ctl := startChild(t, "notify-hold", nil)
	defer func() { ctl.Write([]byte{1}); cmd.Wait() }()
	lfd := recvFd(t, ctl)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ServeContext(ctx, lfd, func() (*Filter, error) { return f.WithNotify(), nil }, runtime.GOARCH, nil)
	}()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("ServeContext after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(60 * time.Second): // hang guard
		t.Fatal("ServeContext did not return after cancel")
	}
}
