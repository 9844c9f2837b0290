//go:build linux && !amd64

package probe

const highBits = uintptr(0x123) << 32

// probeE6: iopl, ioperm and modify_ldt exist on x86 only.
func probeE6(p *run) {
	p.note("not applicable: x86-only system calls")
}
