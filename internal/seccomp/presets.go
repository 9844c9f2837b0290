package seccomp

import (
	"fmt"
	"strings"
)

// Errno values (identical on amd64 and arm64).
const (
	eperm  = 1
	enosys = 38
)

// Argument constants the presets match on.
const (
	tiocsti   = 0x5412
	tioclinux = 0x541c

	afUnix    = 1
	afInet    = 2
	afInet6   = 10
	afNetlink = 16

	netlinkRoute = 0

	cloneThread = 0x00010000
	// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (Docker's
	// 0x7E020000) plus CLONE_NEWTIME (0x80, only meaningful for clone3 and
	// unshare, but cheap to refuse here too).
	cloneNSMask = 0x7E020000 | 0x80

	schedFIFO         = 1
	schedRR           = 2
	schedResetOnFork  = 0x40000000
	schedPolicyNoFlag = 0xffffffff &^ schedResetOnFork
)

// Personalities Docker allows: PER_LINUX, PER_LINUX32 (8), UNAME26
// (0x20000), PER_LINUX32|UNAME26, and the 0xffffffff query.
var allowedPersonalities = []uint32{0, 8, 0x20000, 0x20008, 0xffffffff}

// Preset returns a fresh copy of a named preset: "default", "strict" or
// "permissive".
func Preset(name string) (*Filter, error) {
	switch name {
	case "default", "":
		return defaultPreset(), nil
	case "strict":
		return strictPreset(), nil
	case "permissive":
		return permissivePreset(), nil
	}
	return nil, fmt.Errorf("seccomp: unknown preset %q (want default, strict or permissive)", name)
}

func allow() []Rule           { return []Rule{{Action: Allow}} }
func deny(a Action) []Rule    { return []Rule{{Action: a}} }
func words(s string) []string { return strings.Fields(s) }

// Syscalls ordinary programs need (shells, compilers, Python, Node, Go,
// Java). Names missing on an architecture are skipped when compiling.
const defaultAllow = `
accept accept4 access alarm arch_prctl bind brk cachestat capget capset chdir
chmod chown clock_getres clock_gettime clock_nanosleep close close_range
connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1
epoll_ctl epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2 execve execveat
exit exit_group faccessat faccessat2 fadvise64 fallocate fchdir fchmod
fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr
flock fork fremovexattr fsetxattr fstat fstatfs fsync ftruncate futex
futex_requeue futex_wait futex_waitv futex_wake futimesat getcpu getcwd
getdents getdents64 getegid geteuid getgid getgroups getitimer getpeername
getpgid getpgrp getpid getppid getpriority getrandom getresgid getresuid
getrlimit get_robust_list getrusage getsid getsockname getsockopt gettid
gettimeofday getuid getxattr getxattrat inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents
io_pgetevents ioprio_get ioprio_set io_setup io_submit kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lgetxattr link linkat listen listxattr listxattrat llistxattr lremovexattr
lseek lsetxattr lstat madvise map_shadow_stack membarrier memfd_create
memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap
mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend
mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap name_to_handle_at nanosleep newfstatat open openat openat2 pause
pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect
poll ppoll prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recvfrom
recvmmsg recvmsg remap_file_pages removexattr removexattrat rename renameat
renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam
sched_yield seccomp select semctl semget semop semtimedop sendfile sendmmsg
sendmsg sendto setfsgid setfsuid setgid setgroups setitimer setpgid
setpriority setregid setresgid setresuid setreuid setrlimit set_robust_list
setsid setsockopt set_tid_address setuid setxattr setxattrat shmat shmctl
shmdt shmget shutdown sigaltstack signalfd signalfd4 socketpair splice stat
statfs statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill
time timer_create timer_delete timer_getoverrun timer_gettime timer_settime
timerfd_create timerfd_gettime timerfd_settime times tkill truncate umask
uname unlink unlinkat utime utimensat utimes vfork vmsplice wait4 waitid
write writev file_getattr file_setattr rseq_slice_yield listmount statmount
uretprobe
`

// Kernel attack surface and host-affecting calls, denied with EPERM in every
// preset that does not kill them.
const surfaceDeny = `
ptrace process_vm_readv process_vm_writev pidfd_getfd keyctl add_key
request_key bpf perf_event_open userfaultfd kexec_load kexec_file_load
init_module finit_module delete_module mount umount2 pivot_root chroot
unshare setns open_by_handle_at syslog acct swapon swapoff reboot quotactl
quotactl_fd iopl ioperm modify_ldt uselib nfsservctl lookup_dcookie kcmp
process_madvise move_pages mbind migrate_pages set_mempolicy get_mempolicy
set_mempolicy_home_node clock_settime settimeofday adjtimex clock_adjtime
_sysctl sethostname setdomainname vhangup fanotify_init lsm_get_self_attr
lsm_set_self_attr lsm_list_modules listns create_module get_kernel_syms
query_module
`

// Denied with ENOSYS so libraries fall back: io_uring (A11), clone3 (flags
// behind a pointer, H5) and the new mount API (H5).
const enosysDeny = `
io_uring_setup io_uring_enter io_uring_register clone3 fsopen fsconfig
fsmount fspick open_tree open_tree_attr move_mount mount_setattr
`

func ttyIoctlRules(d Action) []Rule {
	return []Rule{
		{Args: []Arg{Eq32(1, tiocsti)}, Action: d},
		{Args: []Arg{Eq32(1, tioclinux)}, Action: d},
		{Action: Allow},
	}
}

func personalityRules() []Rule {
	var rs []Rule
	for _, p := range allowedPersonalities {
		rs = append(rs, Rule{Args: []Arg{Eq32(0, p)}, Action: Allow})
	}
	return rs
}

func socketRules() []Rule {
	return []Rule{
		{Args: []Arg{Eq32(0, afUnix)}, Action: Allow},
		{Args: []Arg{Eq32(0, afInet)}, Action: Allow},
		{Args: []Arg{Eq32(0, afInet6)}, Action: Allow},
		{Args: []Arg{Eq32(0, afNetlink), Eq32(2, netlinkRoute)}, Action: Allow},
	}
}

func defaultPreset() *Filter {
	f := &Filter{Name: "default", Default: Errno(eperm), Unknown: Errno(enosys), Deny: Errno(eperm), Rules: map[string][]Rule{}}
	for _, n := range words(defaultAllow) {
		f.Rules[n] = allow()
	}
	for _, n := range words(surfaceDeny) {
		f.Rules[n] = deny(Errno(eperm))
	}
	for _, n := range words(enosysDeny) {
		f.Rules[n] = deny(Errno(enosys))
	}
	f.Rules["clone"] = []Rule{{Args: []Arg{BitsClear(0, cloneNSMask)}, Action: Allow}}
	f.Rules["ioctl"] = ttyIoctlRules(Errno(eperm))
	f.Rules["personality"] = personalityRules()
	f.Rules["socket"] = socketRules()
	// Real-time policies via sched_setscheduler (sched_setattr takes a
	// pointer and is left to RLIMIT_RTPRIO).
	f.Rules["sched_setscheduler"] = []Rule{
		{Args: []Arg{MaskedEq(1, schedPolicyNoFlag, schedFIFO)}, Action: Errno(eperm)},
		{Args: []Arg{MaskedEq(1, schedPolicyNoFlag, schedRR)}, Action: Errno(eperm)},
		{Action: Allow},
	}
	return f
}

// Compute-only: enough for static C/Go programs and glibc dynamic start-up.
const strictAllow = `
read write readv writev pread64 pwrite64 lseek close fstat newfstatat stat
lstat statx open openat access faccessat faccessat2 readlink readlinkat
getdents64 getcwd fcntl dup dup2 dup3 pipe2 mmap mprotect munmap brk mremap
madvise mincore arch_prctl set_tid_address set_robust_list get_robust_list
rseq prlimit64 getrlimit getrandom futex futex_waitv clock_gettime
clock_getres clock_nanosleep nanosleep gettimeofday time exit exit_group
rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait
sigaltstack restart_syscall getpid getppid gettid tgkill getuid geteuid
getgid getegid getresuid getresgid uname sysinfo getrusage times
sched_yield sched_getaffinity getcpu membarrier epoll_create1 epoll_ctl
epoll_pwait epoll_wait eventfd2 poll ppoll pselect6 select execve
`

func strictPreset() *Filter {
	f := &Filter{Name: "strict", Default: KillProcess, Unknown: Errno(enosys), Deny: KillProcess, Rules: map[string][]Rule{}}
	for _, n := range words(strictAllow) {
		f.Rules[n] = allow()
	}
	// Threads only: clone must carry CLONE_THREAD and no namespace flag, so
	// the target cannot create processes (fork, vfork, clone3 are refused).
	f.Rules["clone"] = []Rule{{Args: []Arg{BitsSet(0, cloneThread), BitsClear(0, cloneNSMask)}, Action: Allow}}
	f.Rules["clone3"] = deny(Errno(enosys)) // glibc falls back to clone
	f.Rules["ioctl"] = ttyIoctlRules(KillProcess)
	f.Rules["personality"] = personalityRules()
	return f
}

func permissivePreset() *Filter {
	f := &Filter{Name: "permissive", Default: Allow, Unknown: Errno(enosys), Deny: Errno(eperm), Rules: map[string][]Rule{}}
	for _, n := range words(surfaceDeny) {
		f.Rules[n] = deny(Errno(eperm))
	}
	for _, n := range words(enosysDeny) {
		f.Rules[n] = deny(Errno(enosys))
	}
	// Debuggers work: ptrace and friends stay allowed (the pid namespace
	// keeps them inside the box); personality is free (gdb disables ASLR).
	for _, n := range words("ptrace process_vm_readv process_vm_writev kcmp personality") {
		f.Rules[n] = allow()
	}
	f.Rules["clone"] = []Rule{{Args: []Arg{BitsClear(0, cloneNSMask)}, Action: Allow}, {Action: Errno(eperm)}}
	f.Rules["ioctl"] = ttyIoctlRules(Errno(eperm))
	f.Rules["socket"] = append(socketRules(), Rule{Action: Errno(eperm)})
	return f
}
