//go:build !linux && !windows

package selftest

import (
	"errors"
	"runtime"
)

// Run needs the Linux probes and fixtures.
func Run(opts Options) (*Scorecard, error) {
	return nil, errors.New("airlock selftest: not supported yet on " + runtime.GOOS)
}
