//go:build !linux

package landlock

import (
	"errors"
	"runtime"
)

var errNotLinux = errors.New("landlock: only available on linux, not " + runtime.GOOS)

// ABI returns 0 and an error: Landlock is Linux only.
func ABI() (int, error) { return 0, errNotLinux }

func sysNums() (sysnums, error) { return sysnums{}, errNotLinux }
