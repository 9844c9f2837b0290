//go:build !darwin && !linux

package darwin

import "errors"

func runLauncher([]string) error {
	return errors.New("the darwin launcher runs only on macOS (and on Linux for tests)")
}
