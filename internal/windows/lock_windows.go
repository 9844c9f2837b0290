package windows

import (
	"os"

	xwin "golang.org/x/sys/windows"
)

func lockFile(f *os.File) error {
	var ol xwin.Overlapped
	return xwin.LockFileEx(xwin.Handle(f.Fd()), xwin.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ol)
}

func unlockFile(f *os.File) error {
	var ol xwin.Overlapped
	return xwin.UnlockFileEx(xwin.Handle(f.Fd()), 0, 1, 0, &ol)
}
