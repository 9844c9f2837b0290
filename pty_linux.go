package airlock

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// terminalSize is f's window size (0, 0 when unknown).
func terminalSize(f *os.File) (rows, cols uint16) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return ws.Row, ws.Col
}

// followSize copies from's window size to the sandbox's terminal whenever
// the caller's terminal is resized (SIGWINCH), until stop.
func followSize(from, to *os.File) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				// Through SyscallConn: safe against a concurrent Close, and
				// the files stay non-blocking for their copiers.
				var ws *unix.Winsize
				if rc, err := from.SyscallConn(); err == nil {
					rc.Control(func(fd uintptr) { ws, _ = unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ) })
				}
				if rc, err := to.SyscallConn(); err == nil && ws != nil {
					rc.Control(func(fd uintptr) { unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) })
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
