package probe

import "runtime"

// lockThread pins the goroutine to its own OS thread for good, so the
// thread exits with it rather than serving other goroutines.
func lockThread() { runtime.LockOSThread() }
