// Package seccomp turns airlock's syscall policy into a seccomp BPF program.
//
// Rules are plain data (a Filter: syscall name -> ordered Rules with
// per-argument masked-equal matchers, plus Default and Unknown actions).
// Compile emits classic BPF for amd64 or arm64 and is pure computation,
// tested on every OS in a BPF interpreter.
//
// # Program shape
//
//  1. Load seccomp_data.arch; anything but the target's AUDIT_ARCH is
//     killed (KillProcess). On amd64 this kills i386 `int 0x80` and so the
//     32-bit socketcall route around the socket-family rules (THREATS F5).
//  2. amd64 only: numbers >= 0x40000000 (x32 ABI) are killed (H4).
//  3. A balanced binary search over ranges of syscall numbers; ranges with
//     argument rules run their checks; numbers absent from the table get
//     Unknown (ENOSYS in every preset, so new syscalls degrade cleanly, H6).
//
// Arguments the kernel declares int or unsigned int (ioctl request, socket
// family, personality) are compared on their low 32 bits only (Eq32): the
// kernel truncates them, so `(junk<<32)|TIOCSTI` is still TIOCSTI
// (CVE-2019-10063).
//
// # Presets
//
// default: an allow-list modelled on Docker's default profile and flatpak's
// block-list. Known syscalls not listed get EPERM; unknown numbers ENOSYS.
// Denied explicitly with EPERM: ptrace, process_vm_*, pidfd_getfd, kcmp,
// process_madvise, keyctl/add_key/request_key, bpf, perf_event_open,
// userfaultfd, kexec_*, module calls, mount/umount2/pivot_root/chroot,
// unshare/setns, clone with any namespace flag (mask 0x7E020000|CLONE_NEWTIME),
// open_by_handle_at, syslog, acct, swap, reboot, quotactl, iopl/ioperm,
// modify_ldt (deliberately, unlike Docker: only 16-bit/Wine code needs it),
// NUMA policy calls, clock setting (including adjtimex), sethostname,
// fanotify_init, lsm_*, listns, personality values other than Docker's five,
// ioctl TIOCSTI/TIOCLINUX, sched_setscheduler to SCHED_FIFO/SCHED_RR
// (sched_setattr passes the policy by pointer; RLIMIT_RTPRIO covers it).
// ENOSYS, so libraries fall back: clone3, io_uring_*, and the new mount API
// (fsopen, fsconfig, fsmount, fspick, open_tree, open_tree_attr,
// move_mount, mount_setattr).
//
// Sockets: AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK with protocol
// NETLINK_ROUTE only. NETLINK_ROUTE is kept because glibc's getaddrinfo
// (AI_ADDRCONFIG), Go's net.Interfaces and `ip addr` read interfaces with
// it; it only sees the box's own network namespace and changing anything
// needs CAP_NET_ADMIN, which the target never has. Every other netlink
// protocol (netfilter, xfrm, audit, uevent, generic...) and every other
// family (AF_PACKET 17, AF_ALG 38, AF_VSOCK 40, ...) gets EPERM.
//
// strict: for compute-only programs (judge submissions). A short allow-list
// (file reads/writes on already-permitted paths, memory, time, signals to
// itself, futex, epoll, execve); every other known syscall kills the whole
// process (KillProcess, reported as status Violation); unknown numbers and
// clone3 give ENOSYS. Guarantees, given the filter is installed right before
// the target's execve: no sockets of any family; no new processes (clone
// is allowed only with CLONE_THREAD and no namespace flag; fork, vfork,
// execveat are killed), so threads work but children do not; execve stays
// allowed because the filter must survive the launcher's own execve of the
// target. execve only replaces the calling image and cannot add processes,
// so "no exec after the first" reduces to "the program may replace itself
// with another permitted binary, which runs under the same filter". The
// launcher additionally sets RLIMIT_NPROC / a pids limit as a second wall.
//
// permissive: default allow (for debugging), denying only the kernel attack
// surface above; ptrace, process_vm_*, kcmp and personality stay allowed so
// debuggers work.
//
// # Seeing denials without slowing allowed syscalls
//
// WithNotify turns every Errno action into SECCOMP_RET_USER_NOTIF (the
// errno is remembered). Allowed syscalls never leave the kernel's BPF
// fast path; only denied ones wake the broker, which answers each with the
// errno the un-notified rule gives (DenyErrno) and never with CONTINUE, so
// notification adds no TOCTOU window: nothing denied ever runs. The
// listener fd is created by the target's launcher with
// SECCOMP_FILTER_FLAG_NEW_LISTENER and handed to the broker before
// execve (then closed in the target), so the target cannot read, answer or
// spoof the channel: it holds no fd for it and its own later filters can
// only add restrictions. If the broker goes away, the kernel fails notified
// syscalls with ENOSYS, so denial still holds. TSYNC and NEW_LISTENER
// together need SECCOMP_FILTER_FLAG_TSYNC_ESRCH (Linux 5.7+).
//
// # Cost
//
// Build memoizes Preset+Adjust+WithNotify+Compile per process, so repeated
// runs of one policy pay a map lookup instead of a compile. Syscalls whose
// answer does not depend on arguments are allowed through the kernel's
// seccomp action cache (Linux 5.11+) without running the program: the
// compiler only emits instructions that cache understands (loads of nr
// and arch, JEQ/JGE/JA, AND, RET).
//
// Measured here: glibc 2.36 calls clone3 on every pthread_create, so under
// WithNotify Java start-up reports about 17 clone3 denials and Node 6.
// WithNotifyExcept("clone3") keeps those as silent ENOSYS (an attempted
// clone3 with namespace flags then goes unreported, though still refused).
//
// Kill actions are not notified: a strict-preset violation ends the target
// and shows up as a SIGSYS death.
package seccomp
