package probe

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func errnoLabel(e syscall.Errno) string { return unix.ErrnoName(e) }
