package landlock

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Request is what the sandbox grants, as seen inside the sandbox root.
type Request struct {
	// ReadOnly paths get read_file, read_dir and execute beneath them.
	ReadOnly []string
	// ReadWrite paths get every filesystem right the ABI knows, refer
	// included, so files can be moved between ReadWrite directories.
	ReadWrite []string

	// RestrictNet handles TCP bind and connect (ABI 4): only the ports
	// listed below are allowed; empty lists deny all TCP bind and connect.
	RestrictNet bool
	ConnectTCP  []uint16
	BindTCP     []uint16

	// ScopeSignals denies signals to processes outside the domain, and
	// ScopeAbstractUnix denies connecting to abstract unix sockets created
	// outside it (ABI 6).
	ScopeSignals      bool
	ScopeAbstractUnix bool

	// Audit asks the kernel to audit-log denials of the target too, that is
	// after execve (ABI 7, LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON).
	Audit bool
}

// PathRule grants Access beneath Path.
type PathRule struct {
	Path   string
	Access uint64
}

// PortRule grants Access (bind_tcp, connect_tcp) on a TCP port.
type PortRule struct {
	Port   uint16
	Access uint64
}

// Ruleset is a computed Landlock ruleset: plain data, printable, and turned
// into raw system calls by Prepare.
type Ruleset struct {
	// ABI is the Landlock ABI the ruleset is built for: the kernel's,
	// capped at MaxKnownABI. 0 means Landlock is not used.
	ABI int
	// KernelABI is the ABI the kernel reported.
	KernelABI int

	HandledFS  uint64
	HandledNet uint64
	Scoped     uint64
	Flags      uint32 // landlock_restrict_self flags

	// Paths and Ports are sorted. Every path rule is optional: a path that
	// does not exist in the sandbox is skipped (it grants nothing then).
	Paths []PathRule
	Ports []PortRule
}

// Downgrade is one requested protection the kernel's ABI cannot give.
type Downgrade struct {
	Feature string // refer, truncate, ioctl_dev, tcp, scope_signal, scope_abstract_unix, audit, landlock
	Reason  string
	// Weakens is true when less is enforced than asked (fail closed in
	// Strict mode); false when only behaviour differs (e.g. ABI 1 denies
	// every cross-directory rename, or audit logging is missing).
	Weakens bool
}

func (d Downgrade) String() string { return d.Feature + ": " + d.Reason }

// Plan computes the ruleset for req on a kernel with Landlock ABI abi
// (0: no Landlock). It is pure. The ruleset handles every filesystem right
// the ABI knows, so paths that are not listed get nothing.
func Plan(req Request, abi int) (*Ruleset, []Downgrade, error) {
	if abi < 0 {
		return nil, nil, fmt.Errorf("landlock: invalid ABI %d", abi)
	}
	if !req.RestrictNet && (len(req.ConnectTCP) > 0 || len(req.BindTCP) > 0) {
		return nil, nil, errors.New("landlock: TCP ports given without RestrictNet")
	}
	grants := map[string]uint64{}
	add := func(paths []string, rights uint64) error {
		for _, p := range paths {
			if p == "" || !path.IsAbs(p) || strings.IndexByte(p, 0) >= 0 {
				return fmt.Errorf("landlock: path %q must be absolute and contain no NUL", p)
			}
			grants[path.Clean(p)] |= rights
		}
		return nil
	}
	if err := add(req.ReadOnly, readOnlyRights); err != nil {
		return nil, nil, err
	}
	if err := add(req.ReadWrite, readWriteRights); err != nil {
		return nil, nil, err
	}

	if abi == 0 {
		return &Ruleset{}, []Downgrade{{
			Feature: "landlock",
			Reason:  "Landlock is not available on this kernel: nothing is restricted by it",
			Weakens: true,
		}}, nil
	}

	level := min(abi, MaxKnownABI)
	rs := &Ruleset{ABI: level, KernelABI: abi, HandledFS: FSRights(level)}
	var dg []Downgrade
	weak := func(feature, what string, need int) {
		dg = append(dg, Downgrade{feature, fmt.Sprintf("%s not restricted: Landlock ABI %d < %d", what, level, need), true})
	}

	if level < 2 {
		dg = append(dg, Downgrade{"refer", "Landlock ABI 1 < 2: links and renames across directories are always denied", false})
	}
	if level < 3 {
		weak("truncate", "truncate", 3)
	}
	if level < 5 {
		weak("ioctl_dev", "device ioctl", 5)
	}

	for p, rights := range grants {
		rs.Paths = append(rs.Paths, PathRule{Path: p, Access: rights & rs.HandledFS})
	}
	slices.SortFunc(rs.Paths, func(a, b PathRule) int { return strings.Compare(a.Path, b.Path) })

	if req.RestrictNet {
		if level >= 4 {
			rs.HandledNet = NetRights(level)
			ports := map[uint16]uint64{}
			for _, p := range req.ConnectTCP {
				ports[p] |= AccessNetConnectTCP
			}
			for _, p := range req.BindTCP {
				ports[p] |= AccessNetBindTCP
			}
			for p, a := range ports {
				rs.Ports = append(rs.Ports, PortRule{Port: p, Access: a})
			}
			slices.SortFunc(rs.Ports, func(a, b PortRule) int { return int(a.Port) - int(b.Port) })
		} else {
			weak("tcp", "TCP bind and connect", 4)
		}
	}
	if req.ScopeSignals {
		if level >= 6 {
			rs.Scoped |= ScopeSignal
		} else {
			weak("scope_signal", "signals to processes outside the sandbox", 6)
		}
	}
	if req.ScopeAbstractUnix {
		if level >= 6 {
			rs.Scoped |= ScopeAbstractUnixSocket
		} else {
			weak("scope_abstract_unix", "abstract unix socket connect", 6)
		}
	}
	if req.Audit {
		if level >= 7 {
			rs.Flags |= RestrictSelfLogNewExecOn
		} else {
			dg = append(dg, Downgrade{"audit", fmt.Sprintf("denials after exec are not audit-logged: Landlock ABI %d < 7", level), false})
		}
	}
	return rs, dg, nil
}

// String renders the ruleset for plan printing, one fact a line.
// Equal reports whether r and o are the same ruleset.
func (r *Ruleset) Equal(o *Ruleset) bool {
	return r.ABI == o.ABI && r.KernelABI == o.KernelABI && r.HandledFS == o.HandledFS && r.HandledNet == o.HandledNet &&
		r.Scoped == o.Scoped && r.Flags == o.Flags && slices.Equal(r.Paths, o.Paths) && slices.Equal(r.Ports, o.Ports)
}

func (r *Ruleset) String() string {
	if r == nil || r.ABI == 0 {
		return "landlock: not used\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "landlock ABI %d", r.ABI)
	if r.KernelABI != r.ABI {
		fmt.Fprintf(&b, " (kernel ABI %d)", r.KernelABI)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  handled fs: %s\n", names(r.HandledFS, fsNames))
	if r.HandledNet == 0 {
		b.WriteString("  handled net: none (TCP not restricted)\n")
	} else {
		fmt.Fprintf(&b, "  handled net: %s\n", names(r.HandledNet, netNames))
	}
	fmt.Fprintf(&b, "  scoped: %s\n", names(r.Scoped, scopeNames))
	for _, p := range r.Paths {
		class := names(p.Access, fsNames)
		switch p.Access {
		case readOnlyRights & r.HandledFS:
			class = "read-only (" + class + ")"
		case r.HandledFS:
			class = "read-write (all)"
		}
		fmt.Fprintf(&b, "  allow %s: %s\n", strconv.Quote(p.Path), class)
	}
	for _, p := range r.Ports {
		fmt.Fprintf(&b, "  allow tcp port %d: %s\n", p.Port, names(p.Access, netNames))
	}
	if r.Flags != 0 {
		fmt.Fprintf(&b, "  restrict_self flags: %s\n", names(uint64(r.Flags), []string{"log_same_exec_off", "log_new_exec_on", "log_subdomains_off"}))
	}
	return b.String()
}
