// Package landlock computes airlock's Landlock ruleset (the second
// filesystem, TCP and scoping wall on Linux) and prepares it as plain data
// that a freshly cloned child applies with a few raw system calls.
//
// Why not go-landlock: go-landlock restricts the calling Go process (every
// thread, through psx or TSYNC). airlock applies Landlock in the launcher's
// child, after pivot_root and before seccomp and execve, in a process that
// was started by a raw clone and has no working Go runtime: it may not
// allocate, take locks or grow its stack. So this package splits the work:
//
//   - [Plan] is pure: it turns a [Request] and a Landlock ABI version into a
//     [Ruleset] and a list of [Downgrade]s (what the kernel cannot enforce),
//     and is table-tested on every OS.
//   - [Ruleset.Prepare] allocates, in the parent, every byte the child needs
//     (the ruleset attribute, NUL-terminated paths, one rule attribute per
//     rule) and [Prepared.Ops] lists the system calls as [Op] values.
//   - [Run] is a reference executor for the ops, using only
//     syscall.RawSyscall6 and no allocation; the launcher may copy its loop
//     into the fork child.
//
// Use by the launcher:
//
//	abi, err := landlock.ABI()          // err: Landlock unusable; abi 0
//	rs, downgrades, err := landlock.Plan(req, abi)
//	// Strict: refuse when any downgrade has Weakens; BestEffort: report all.
//	p, err := rs.Prepare()
//	ops := p.Ops()                       // empty when abi is 0
//	// child, after pivot_root, close_range and PR_SET_NO_NEW_PRIVS,
//	// before seccomp:  idx, errno := landlock.Run(ops)  (or its loop)
//	// parent, on failure: ops[idx].Stage + ": " + errno
//	runtime.KeepAlive(p)                 // until the child has run
//
// Request paths are paths inside the sandbox, opened by the child after
// pivot_root (following symlinks). Each path rule is optional: a path that
// does not exist there grants nothing and is skipped.
//
// Landlock is per thread and inherited by children. The ops restrict only
// the thread that runs them (and what it later forks or execs), which is
// exactly the target process when run in the fork child right before
// execve. landlock_restrict_self needs no_new_privs (or CAP_SYS_ADMIN in the
// current user namespace), so the child sets PR_SET_NO_NEW_PRIVS first.
//
// Gaps that remain at every ABI this package knows (see THREATS.md B8):
// files already open when the ruleset is applied; UDP, MPTCP and every
// protocol other than TCP; connect to pathname unix sockets (ABI 9 adds a
// right for it, not handled here yet); and before ABI 2, 3, 4, 5 and 6
// respectively: refer, truncate, TCP, device ioctls and scoping, which Plan
// reports as downgrades.
package landlock
