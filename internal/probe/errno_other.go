//go:build !linux

package probe

import "syscall"

var errnoNames = map[syscall.Errno]string{}
