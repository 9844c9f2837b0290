//go:build !unix && !windows

package windows

import "os"

// No file locks here: the journal is only used by the Windows backend.
func lockFile(f *os.File) error   { return nil }
func unlockFile(f *os.File) error { return nil }
