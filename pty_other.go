//go:build !linux

package airlock

import "os"

func isTerminal(f *os.File) bool { return false }

func terminalSize(f *os.File) (rows, cols uint16) { return 0, 0 }

func followSize(from, to *os.File) (stop func()) { return func() {} }
