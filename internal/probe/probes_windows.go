package probe

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The Windows probes: one real attempt each against what an AppContainer,
// the job object and its UI limits should stop. Arguments come from
// internal/selftest (run_windows.go).

func init() {
	for _, e := range []syscall.Errno{windows.ERROR_ACCESS_DENIED, windows.ERROR_NOT_ENOUGH_QUOTA,
		windows.ERROR_NOT_ENOUGH_MEMORY, windows.ERROR_COMMITMENT_LIMIT, windows.ERROR_FILE_NOT_FOUND,
		windows.ERROR_PATH_NOT_FOUND, windows.ERROR_INVALID_PARAMETER, windows.WSAEACCES, windows.WSAECONNREFUSED,
		windows.WSAENETUNREACH, windows.WSAEHOSTUNREACH, windows.WSAETIMEDOUT} {
		errnoNames[e] = errnoText(e)
	}
	register("A9", "a", "writes outside the grants (profile dir, read-only grant)", probeA9)
	register("B3", "b", "inherited environment secrets", probeB3)
	register("B8", "b", "a secret file in the user's profile", probeB8)
	register("C2", "c", "open the broker process (VM read, terminate)", probeC2)
	register("E5", "e", "desktop: clipboard and windows of the user", probeE5)
	register("F1", "f", "host loopback services", probeF1)
	register("G1", "g", "more processes than the limit", probeG1)
	register("G2", "g", "memory beyond the limit", probeG2)
	helpers["hold"] = holdHelper
}

// errnoText is the ERROR_ name where the probe knows it.
func errnoText(e syscall.Errno) string {
	switch e {
	case windows.ERROR_ACCESS_DENIED:
		return "ERROR_ACCESS_DENIED"
	case windows.ERROR_NOT_ENOUGH_QUOTA:
		return "ERROR_NOT_ENOUGH_QUOTA"
	case windows.ERROR_NOT_ENOUGH_MEMORY:
		return "ERROR_NOT_ENOUGH_MEMORY"
	case windows.ERROR_COMMITMENT_LIMIT:
		return "ERROR_COMMITMENT_LIMIT"
	case windows.ERROR_FILE_NOT_FOUND:
		return "ERROR_FILE_NOT_FOUND"
	case windows.ERROR_PATH_NOT_FOUND:
		return "ERROR_PATH_NOT_FOUND"
	case windows.ERROR_INVALID_PARAMETER:
		return "ERROR_INVALID_PARAMETER"
	case windows.WSAEACCES:
		return "WSAEACCES"
	case windows.WSAECONNREFUSED:
		return "WSAECONNREFUSED"
	case windows.WSAENETUNREACH:
		return "WSAENETUNREACH"
	case windows.WSAEHOSTUNREACH:
		return "WSAEHOSTUNREACH"
	case windows.WSAETIMEDOUT:
		return "WSAETIMEDOUT"
	}
	return fmt.Sprintf("error %d", uint32(e))
}

// probeA9: a new file in the canary directory (never granted), then one
// byte appended to a file under a read-only grant. Both are fixtures of
// the selftest; its oracle compares them from outside.
func probeA9(p *run) {
	name := filepath.Join(p.arg("canary"), "airlock-probe-new")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if p.step("create "+name, err) {
		f.Close()
		p.escape("created a file in the ungranted canary directory")
	}
	ro := filepath.Join(p.arg("ro"), "file")
	f, err = os.OpenFile(ro, os.O_WRONLY|os.O_APPEND, 0)
	if p.step("open for writing "+ro, err) {
		_, err = f.Write([]byte("x"))
		f.Close()
		if p.step("append to "+ro, err) {
			p.escape("wrote into a file under a read-only grant")
		}
	}
}

// probeB3: the broker's environment canary must not be inherited.
func probeB3(p *run) {
	v, ok := os.LookupEnv("SBX_CANARY_SECRET")
	var err error
	if !ok {
		err = fmt.Errorf("not set")
	}
	if p.step("getenv SBX_CANARY_SECRET", err) && v == p.arg("token") {
		p.escape("the broker's secret variable reached the sandbox")
	}
}

// probeB8: read the canary secret placed in the user's profile.
func probeB8(p *run) {
	name := filepath.Join(p.arg("canary"), "secret")
	b, err := os.ReadFile(name)
	if p.step("read "+name, err) && bytes.Contains(b, []byte(p.arg("token"))) {
		p.escape("read the secret file in the user's profile")
	}
}

// probeC2: handles to the broker with rights that would let it read its
// memory or end it; the handles are closed at once, nothing is used.
func probeC2(p *run) {
	pid, _ := strconv.Atoi(p.arg("broker"))
	if pid == 0 {
		p.note("no broker pid given")
		return
	}
	for _, r := range []struct {
		name   string
		access uint32
	}{{"PROCESS_VM_READ", windows.PROCESS_VM_READ}, {"PROCESS_TERMINATE", windows.PROCESS_TERMINATE}} {
		h, err := windows.OpenProcess(r.access, false, uint32(pid))
		if p.step(fmt.Sprintf("OpenProcess(%s, broker %d)", r.name, pid), err) {
			windows.CloseHandle(h)
			p.escape("opened the broker with %s", r.name)
		}
	}
}

var (
	user32                       = windows.NewLazySystemDLL("user32.dll")
	procOpenClipboard            = user32.NewProc("OpenClipboard")
	procCloseClipboard           = user32.NewProc("CloseClipboard")
	procGetWindowThreadProcessId = user32.NewProc("GetWindowThreadProcessId")
)

// enumCount counts top-level windows of other processes (EnumWindows'
// callback cannot carry a closure).
var enumCount int

func enumWindow(hwnd uintptr, _ uintptr) uintptr {
	var pid uint32
	procGetWindowThreadProcessId.Call(hwnd, uintptr(unsafe.Pointer(&pid)))
	if pid != uint32(os.Getpid()) {
		enumCount++
	}
	return 1
}

// probeE5: open the clipboard (shared by the window station) and count
// the windows of other processes on this desktop.
func probeE5(p *run) {
	if err := user32.Load(); !p.step("load user32.dll", err) {
		return
	}
	r, _, err := procOpenClipboard.Call(0)
	if r == 0 {
		p.step("OpenClipboard", err)
	} else {
		p.step("OpenClipboard", nil)
		procCloseClipboard.Call()
		p.escape("opened the clipboard")
	}
	enumCount = 0
	err = windows.EnumWindows(windows.NewCallback(enumWindow), nil)
	if p.step("EnumWindows", err) && enumCount > 0 {
		p.escape("sees %d windows of other processes", enumCount)
	}
}

// probeF1: TCP to the selftest's server on 127.0.0.1; the server counts
// accepted connections. Once connected the probe waits for the server to
// close: a connection closed before its accept can be dropped unseen (Go
// on Windows skips those), and the oracle must see this one.
func probeF1(p *run) {
	addr := net.JoinHostPort("127.0.0.1", p.arg("tcp"))
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if p.step("connect "+addr, err) {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		c.Read(make([]byte, 1))
		c.Close()
		p.escape("connected to a host loopback service")
	}
}

// probeG1 starts at most 20 copies of the `hold` helper at once and
// counts them; with the limit `procs` (the probe is one of them) more than
// procs-1 children is an escape. All children are ended before the report.
func probeG1(p *run) {
	limit, _ := strconv.Atoi(p.arg("procs"))
	bin := p.arg("bin")
	var kids []*exec.Cmd
	var err error
	for i := 0; i < 20; i++ {
		c := exec.Command(bin, "__probe", "hold")
		if _, err = c.StdinPipe(); err == nil {
			err = c.Start()
		}
		if err != nil {
			break
		}
		kids = append(kids, c)
	}
	p.step(fmt.Sprintf("start child %d", len(kids)+1), err)
	for _, c := range kids {
		c.Process.Kill()
		c.Wait()
	}
	p.note("%d children ran at once", len(kids))
	if limit > 0 && len(kids) >= limit {
		p.escape("%d children beside the probe with a limit of %d processes", len(kids), limit)
	}
}

// holdHelper waits for stdin to close, at most 10 seconds.
func holdHelper(rest []string, kv map[string]string) int {
	done := make(chan struct{})
	go func() { os.Stdin.Read(make([]byte, 1)); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	return 0
}

// probeG2 commits memory in 16 MiB steps up to 512 MiB (VirtualAlloc, so a
// refusal is an error and not a runtime crash) and frees it again.
func probeG2(p *run) {
	limit, _ := strconv.ParseInt(p.arg("mem"), 10, 64)
	const step, max = 16 << 20, 512 << 20
	var blocks []uintptr
	var total int64
	var err error
	for total < max {
		var a uintptr
		a, err = windows.VirtualAlloc(0, step, windows.MEM_RESERVE|windows.MEM_COMMIT, windows.PAGE_READWRITE)
		if err != nil {
			break
		}
		blocks = append(blocks, a)
		total += step
	}
	if err != nil {
		p.step(fmt.Sprintf("commit beyond %d MiB", total>>20), err)
	} else {
		p.step(fmt.Sprintf("commit %d MiB", total>>20), nil)
	}
	for _, a := range blocks {
		windows.VirtualFree(a, 0, windows.MEM_RELEASE)
	}
	p.note("committed %d MiB", total>>20)
	if limit > 0 && total > limit {
		p.escape("committed %d MiB with a memory limit of %d MiB", total>>20, limit>>20)
	}
}
