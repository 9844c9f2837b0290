// Package netnstest runs test code inside a fresh user and network namespace
// that was set up by the real netns helper, the way the launcher will do it:
// a re-executed test binary ("sandbox") starts the helper, waits for it to
// exit, then runs a registered client scenario and prints its result as JSON.
package netnstest
