//go:build linux && amd64

package probe

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const highBits = uintptr(0x123) << 32

// probeE6 asks for raw I/O port access and reads the LDT.
func probeE6(p *run) {
	lockThread()
	if p.step("iopl(3)", unix.Iopl(3)) {
		p.escape("iopl(3) granted: raw I/O ports")
		unix.Iopl(0)
	}
	if p.step("ioperm(0x80, 1, on)", unix.Ioperm(0x80, 1, 1)) {
		p.escape("ioperm granted port 0x80")
		unix.Ioperm(0x80, 1, 0)
	}
	var buf [16]byte
	_, _, e := syscall.Syscall(unix.SYS_MODIFY_LDT, 0, uintptrOf(&buf[0]), 16)
	if p.step("modify_ldt(read)", errOf(e)) {
		p.escape("modify_ldt reachable")
	}
}
