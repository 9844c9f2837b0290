//go:build !linux

package airlock

func runPlatformHelper() {}
