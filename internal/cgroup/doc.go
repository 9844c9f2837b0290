// Package cgroup is airlock's cgroup driver: it puts a sandbox's process tree
// in its own cgroup, limits memory (swap included), tasks and CPU bandwidth,
// reads back the kernel's evidence (CPU time, memory peak, OOM kills, pids.max
// hits) and kills the whole tree, even double-forked daemons.
//
// Both cgroup v1 (one directory per hierarchy: memory, pids, cpu, cpuacct,
// freezer) and cgroup v2 (one directory) are driven by the same Group type.
// Groups are named airlock-<brokerpid>-<random> and live below the broker's own
// cgroup, so CleanStale can find and remove those of a broker that died.
//
// The driver is hand-written rather than built on containerd/cgroups: that
// library pulls in dbus, eBPF and protobuf packages (a hello-world grew from
// 2.4 MB to 10 MB) and has no freeze-kill-thaw loop for v1 teardown.
//
// The parsers (parse.go) are pure and build everywhere; everything that
// touches the kernel is in _linux.go files. A Group's methods may be called
// from several goroutines, but Close only once.
//
// v1 has no way to kill a group when the broker dies: a SIGKILLed broker's
// group keeps its processes until the next broker runs CleanStale (or the
// sandbox's pid namespace init dies, which kills them first).
package cgroup
