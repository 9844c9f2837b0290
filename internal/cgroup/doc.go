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
// The parsing helpers in this file's package are pure and build everywhere;
// everything that touches the kernel is in _linux.go files.
package cgroup
