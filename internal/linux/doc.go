// Package linux builds and starts sandboxes on Linux.
//
// The broker compiles a policy into a list of raw system calls (an op list,
// printable as a launch plan) and forks a child that runs them with no Go
// runtime involvement: no allocation, no locks, only syscall.RawSyscall6 on
// memory prepared in the parent. The child becomes the sandbox's init (pid 1
// of a new pid namespace); it starts the target and reaps orphans. On amd64
// the target is a vfork of the init: it shares the init's memory until its
// exec, so a launch copies the broker's page tables once, not twice, and the
// exec tears nothing down.
package linux
