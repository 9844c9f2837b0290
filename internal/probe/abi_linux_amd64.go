//go:build linux && amd64

package probe

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// int80 makes an i386 system call through int $0x80.
func int80(nr, a1, a2, a3 uintptr) uintptr

// altABIGetpid calls getpid through the i386 (int80) or x32 entry point.
func altABIGetpid(abi string) (int, syscall.Errno, bool) {
	switch abi {
	case "int80":
		r := int(int32(uint32(int80(20, 0, 0, 0)))) // i386 getpid is 20
		if r < 0 && r > -4096 {
			return 0, syscall.Errno(-r), true
		}
		return r, 0, true
	case "x32":
		r, _, e := syscall.RawSyscall(0x40000000|unix.SYS_GETPID, 0, 0, 0)
		return int(r), e, true
	}
	return 0, 0, false
}

// socketcall32 calls i386 socketcall(SYS_SOCKET, {family, type, 0}) with
// the argument block in memory below 4 GiB, as a 32-bit process would.
func socketcall32(family, typ int) (int, syscall.Errno) {
	ptr, err := unix.MmapPtr(-1, 0, nil, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_32BIT)
	if err != nil {
		return -1, err.(syscall.Errno)
	}
	defer unix.MunmapPtr(ptr, 4096)
	args := (*[3]uint32)(ptr)
	args[0], args[1], args[2] = uint32(family), uint32(typ), 0
	r := int(int32(uint32(int80(102, 1, uintptr(ptr), 0))))
	if r < 0 && r > -4096 {
		return -1, syscall.Errno(-r)
	}
	return r, 0
}
