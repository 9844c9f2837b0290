//go:build linux && !amd64

package probe

import "syscall"

// The i386 and x32 entry points exist on x86-64 only.
func altABIGetpid(string) (int, syscall.Errno, bool) { return 0, 0, false }

func socketcall32(int, int) (int, syscall.Errno) { return -1, syscall.ENOSYS }
