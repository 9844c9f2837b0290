package seccomp

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// A 64-bit program entering the kernel through the i386 gate (int 0x80):
// getpid (20) and socketcall(SYS_SOCKET, {AF_ALG, SOCK_SEQPACKET, 0})
// (102), the F5 route around socket-family rules.
const i386Program = `#include <stdio.h>
static unsigned int args[3] = {38, 5, 0};
static long int80(long nr, long a, long b) {
	long ret;
	__asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
	return ret;
}
int main(int argc, char **argv) {
	printf("start\n"); fflush(stdout);
	long r = argv[1][0] == 'g' ? int80(20, 0, 0) : int80(102, 1, (long)args);
	printf("returned %ld\n", r); fflush(stdout);
	return 0;
}
`

func TestLiveI386GateKilled(t *testing.T) {
	requireSeccomp(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("the i386 gate exists only on amd64")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc on this host")
	}
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "i.c"), filepath.Join(dir, "i")
	os.WriteFile(src, []byte(i386Program), 0o644)
	if out, err := exec.Command("gcc", "-O0", "-no-pie", "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("gcc cannot build a non-PIE program here: %v %s", err, out)
	}
	for _, which := range []string{"getpid", "socketcall"} {
		ctl, err := runUnder(t, "", dir, bin, which)
		if err != nil || !strings.Contains(ctl, "returned") {
			t.Fatalf("%s control: %v %q", which, err, ctl)
		}
		if strings.Contains(ctl, "returned -38") {
			t.Logf("%s: kernel has no IA32 emulation (ENOSYS unfiltered); the kill below still shows the arch check", which)
		}
		out, err := runUnder(t, "default", dir, bin, which)
		ee, ok := err.(*exec.ExitError)
		if !ok || !strings.Contains(out, "start") || strings.Contains(out, "returned") {
			t.Fatalf("%s under default: %v %q, want killed after start", which, err, out)
		}
		if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
			t.Fatalf("%s under default: status %v, want SIGSYS", which, ws)
		}
		t.Logf("%s: unfiltered %q; filtered killed by SIGSYS", which, strings.TrimSpace(ctl))
	}
}
