//go:build !darwin

package darwin

import "errors"

func runLauncher([]string) error { return errors.New("the darwin launcher runs only on macOS") }
