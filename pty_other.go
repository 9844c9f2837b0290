//go:build !linux

package airlock

import (
	"errors"
	"os"
)

func openPTY(like *os.File) (master, slave *os.File, err error) {
	return nil, nil, errors.New("no pseudo-terminal support")
}

func isTerminal(f *os.File) bool { return false }
