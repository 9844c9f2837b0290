package linux

import (
	"github.com/airlock-sandbox/airlock/internal/cgroup"
	"github.com/airlock-sandbox/airlock/internal/landlock"
	"github.com/airlock-sandbox/airlock/internal/seccomp"
)

// MountKind mirrors airlock.MountKind.
type MountKind int

const (
	Bind MountKind = iota
	Tmpfs
	Symlink
	File
)

// Mount is one filesystem entry of the sandbox, with host paths resolved.
type Mount struct {
	Kind     MountKind
	Source   string
	Dest     string
	Writable bool
	Size     int64
	Data     []byte
}

// Terminal is the pseudo-terminal the target makes for itself.
type Terminal struct {
	Slots      [3]bool // stdio slots that get the slave
	Rows, Cols uint16  // initial window size
}

// Rlimit is one resource limit for the target.
type Rlimit struct {
	Resource int
	Cur, Max uint64
}

// Spec is everything the launcher needs, in Linux terms.
type Spec struct {
	Path  string // as given: searched in PATH inside when it has no slash
	Args  []string
	Env   []string
	Dir   string
	Stdio [3]int
	// Terminal, when set, has the target make a pseudo-terminal in the
	// sandbox's own devpts (so ttyname works inside and the caller's
	// terminal never enters), put its slave on the stdio slots marked in
	// Terminal.Slots as the controlling terminal, and send the master to
	// the broker (Process.Terminal).
	Terminal *Terminal
	Mounts   []Mount
	Hostname string
	// ShareNet keeps the host network namespace (--net host).
	ShareNet bool
	// HostUID/HostGID: the unprivileged host ids the sandbox user maps to
	// when the broker is root.
	HostUID, HostGID int
	Rlimits          []Rlimit
	// Landlock is applied in the init before it forks the target.
	Landlock *landlock.Prepared
	// Seccomp is installed in the target right before execve; with
	// SeccompNotify its listener fd goes to the broker (Process.Listener).
	Seccomp       []seccomp.SockFilter
	SeccompNotify bool
	// Warm allows a sandbox prepared ahead for the same shape (see
	// warm_linux.go); the broker must set it only when nothing per-run
	// happens before release except BeforeRelease with a cgroup.
	Warm bool
	// Cgroup, when set, is the group the target runs in; the launcher
	// creates it (ahead of time for a warm sandbox) and Process.Cgroup
	// hands it to the caller, who reads and closes it.
	Cgroup *cgroup.Spec
}
