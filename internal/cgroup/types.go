package cgroup

import "time"

// Info is what Detect found about this host's cgroups.
type Info struct {
	Version     int               // 1, 2, or 0 when no usable cgroup fs is mounted
	Controllers map[string]bool   // memory, memsw (v1), pids, cpu, cpuacct (v1), freezer (v1), kill (v2)
	Paths       map[string]string // the broker's own cgroup dir per controller (v2: every controller the same dir)
	CanCreate   bool              // this process can create child cgroups there
	Reason      string            // why not, when !CanCreate
	Fix         string            // what the user can do about it
}

// Spec is the limits of one group. Zero means no limit.
type Spec struct {
	Parent string  // cgroup path (as in /proc/self/cgroup) to create below; default: the broker's own
	Memory int64   // bytes, memory plus swap
	Pids   int64   // tasks (processes and threads)
	CPUs   float64 // CPU bandwidth in CPUs, e.g. 1.5
	// Minimal (v1): join only the hierarchies the limits need, plus cpuacct
	// with CPUAccounting. Each v1 hierarchy costs a mkdir and an rmdir per
	// run, and a pid namespace already gives a whole-tree kill without the
	// freezer.
	Minimal       bool
	CPUAccounting bool
}

// Stats is the kernel's accounting for a group.
type Stats struct {
	CPUTime    time.Duration // user+system of every task that ran in the group
	MemoryPeak uint64        // bytes
	OOMKilled  bool          // the kernel OOM-killed a task in the group
	PidsPeak   int           // 0 when the kernel does not report it
	PidsMaxHit bool          // a fork or clone failed at pids.max
}

// needs reports whether a Minimal v1 group joins controller c.
func (s Spec) needs(c string) bool {
	switch c {
	case "memory":
		return s.Memory > 0
	case "pids":
		return s.Pids > 0
	case "cpu":
		return s.CPUs > 0
	case "cpuacct":
		return s.CPUAccounting
	}
	return false
}
