//go:build !linux

package probe

import "syscall"

var errnoNames = map[syscall.Errno]string{}

func errnoLabel(e syscall.Errno) string { return errnoNames[e] }
