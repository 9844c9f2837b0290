// Package linux builds and starts sandboxes on Linux.
//
// The broker compiles a policy into a list of raw system calls (an op list,
// printable as a launch plan) and forks a child that runs them with no Go
// runtime involvement: no allocation, no locks, only syscall.RawSyscall6 on
// memory prepared in the parent. The child becomes the sandbox's init (pid 1
// of a new pid namespace); it forks the target and reaps orphans.
package linux
