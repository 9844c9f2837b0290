package windows

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotEnforceable is wrapped by plan errors for protections Windows (or
// this host) cannot give when the policy is strict.
var ErrNotEnforceable = errors.New("protection not available on this host")

// Bind is a host path the target may use. On Windows it stays at its own
// path: Dest must equal Source.
type Bind struct {
	Source, Dest string
	Write        bool
	Optional     bool
}

// Limits are the resource bounds of the policy (0 or negative: none).
type Limits struct {
	Procs     int
	Memory    int64
	CPUs      float64
	CPUTime   time.Duration
	FileSize  int64
	OpenFiles int
	Stack     int64
}

// Spec is the policy as the Windows backend sees it.
type Spec struct {
	// Program is the resolved path of the executable ("" when unknown).
	Program string
	// Dir is the target's working directory; the AppContainer must be
	// able to open it, so it must be granted or a system directory.
	Dir   string
	Binds []Bind
	// Unmapped names mounts with no Windows equivalent (tmpfs, symlink,
	// file); the target simply does not get them.
	Unmapped []string
	// Net is "none", "allow" or "host".
	Net    string
	Limits Limits
	Strict bool
	// HostCPUs is the number of logical CPUs, for the CPU rate.
	HostCPUs int
	// SystemDirs are readable by every AppContainer already (Windows,
	// Program Files); the program needs no grant there.
	SystemDirs []string
	// NoDynamicCode and NoWin32k add mitigations that break JITs and GUI
	// libraries, so they are opt-in.
	NoDynamicCode, NoWin32k bool
}

// Protection is one line of the report (mirrors airlock.Protection).
type Protection struct {
	Name, Mechanism, State, Detail string
}

// States, as in airlock.ProtectionState.
const (
	StateEnforced = "enforced"
	StateDegraded = "degraded"
	StateOff      = "off"
)

// Job object limit flags, UI limits and messages (winnt.h).
const (
	LimitProcessTime      = 0x2
	LimitJobTime          = 0x4
	LimitActiveProcess    = 0x8
	LimitJobMemory        = 0x200
	LimitDieOnException   = 0x400
	LimitKillOnJobClose   = 0x2000
	UILimitHandles        = 0x1
	UILimitReadClipboard  = 0x2
	UILimitWriteClipboard = 0x4
	UILimitSystemParams   = 0x8
	UILimitDisplaySet     = 0x10
	UILimitGlobalAtoms    = 0x20
	UILimitDesktop        = 0x40
	UILimitExitWindows    = 0x80
	UILimitAll            = 0xff

	CPURateEnable  = 0x1
	CPURateHardCap = 0x4
)

// Process creation mitigation bits (PROCESS_CREATION_MITIGATION_POLICY_*).
const (
	MitigationForceRelocate   = 1 << 8
	MitigationHeapTerminate   = 1 << 12
	MitigationBottomUpASLR    = 1 << 16
	MitigationStrictHandles   = 1 << 24
	MitigationWin32kDisable   = 1 << 28
	MitigationExtensionPoints = 1 << 32
	MitigationNoDynamicCode   = 1 << 36
	MitigationNoRemoteImages  = 1 << 52
	MitigationNoLowLabelImage = 1 << 56
)

// Capability SIDs for the network (S-1-15-3-1 internetClient,
// S-1-15-3-3 privateNetworkClientServer).
const (
	SIDInternetClient       = "S-1-15-3-1"
	SIDPrivateNetworkClient = "S-1-15-3-3"
)

// JobPlan is what the job object is configured with.
type JobPlan struct {
	LimitFlags     uint32
	ActiveProcs    uint32
	JobMemory      uint64
	JobUserTime100 int64  // per-job user time, in 100 ns units
	CPURate        uint32 // 1/100 percent of the whole machine; 0: no cap
	UIRestrictions uint32
}

// PathGrant is an ACE the run adds for the AppContainer SID.
type PathGrant struct {
	Path     string
	Access   Access
	Optional bool
}

// Plan is everything the launcher does, as data.
type Plan struct {
	Capabilities []string
	Grants       []PathGrant
	Job          JobPlan
	Mitigations  uint64
	// NoChildren sets PROC_THREAD_ATTRIBUTE_CHILD_PROCESS_POLICY. It also
	// starts the target without a console (DETACHED_PROCESS): a console
	// needs a conhost.exe process in the job, which a limit of one
	// process would not allow. Otherwise the target gets a hidden console
	// that its children share.
	NoChildren bool
	Desktop    bool
	Strict     bool
	// Report is what the AppContainer launch enforces; FallbackReport what
	// a restricted low-integrity token with the same job enforces.
	Report         []Protection
	FallbackReport []Protection
}

// BuildPlan turns a spec into a plan. It fails for policies Windows cannot
// express and, when strict, for protections it cannot enforce.
func BuildPlan(s Spec) (*Plan, error) {
	p := &Plan{Strict: s.Strict, Desktop: true}
	var refuse []string
	add := func(name, mech, state, detail string) {
		p.Report = append(p.Report, Protection{name, mech, state, detail})
	}
	lack := func(name, detail string) {
		if s.Strict {
			refuse = append(refuse, name+": "+detail)
		}
		add(name, "none", StateOff, detail)
	}

	// Filesystem: the AppContainer sees system directories and the grants.
	seen := map[string]int{}
	for _, b := range s.Binds {
		if !samePath(b.Source, b.Dest) {
			return nil, fmt.Errorf("bind %s -> %s: on Windows a path can only be granted at its own location (destination must equal source)", b.Source, b.Dest)
		}
		a := Read
		if b.Write {
			a = Modify
		}
		key := strings.ToLower(trimSep(b.Source))
		if i, ok := seen[key]; ok {
			if a > p.Grants[i].Access {
				p.Grants[i].Access = a
			}
			p.Grants[i].Optional = p.Grants[i].Optional && b.Optional
			continue
		}
		seen[key] = len(p.Grants)
		p.Grants = append(p.Grants, PathGrant{Path: trimSep(b.Source), Access: a, Optional: b.Optional})
	}
	if s.Program != "" && !under(s.Program, s.SystemDirs) && !coveredBy(s.Program, p.Grants) {
		p.Grants = append(p.Grants, PathGrant{Path: s.Program, Access: Read})
	}
	if s.Dir != "" && !under(s.Dir, s.SystemDirs) && !coveredBy(s.Dir, p.Grants) {
		return nil, fmt.Errorf("working directory %s is not granted to the sandbox: bind it read-only or read-write", s.Dir)
	}
	fsDetail := fmt.Sprintf("%d path grants for the container SID, journaled and restored after the run", len(p.Grants))
	if len(s.Unmapped) > 0 {
		fsDetail += "; not available on Windows, left out: " + strings.Join(s.Unmapped, ", ")
	}
	add("filesystem", "AppContainer + DACL grants", StateEnforced, fsDetail)

	switch s.Net {
	case "", "none":
		add("network", "AppContainer without network capabilities", StateEnforced, "")
	case "host":
		p.Capabilities = []string{SIDInternetClient, SIDPrivateNetworkClient}
		add("network", "AppContainer capabilities internetClient, privateNetworkClientServer", StateOff, "host network as asked")
	case "allow":
		// No per-destination filter without admin rights: block all.
		if s.Strict {
			refuse = append(refuse, "network: a destination allowlist needs firewall rules (admin); use none or host")
		}
		add("network", "AppContainer without network capabilities", StateDegraded, "allowlist not enforceable without admin; all network blocked")
	default:
		return nil, fmt.Errorf("network mode %q: want none, allow or host", s.Net)
	}

	j := &p.Job
	j.LimitFlags = LimitKillOnJobClose | LimitDieOnException
	j.UIRestrictions = UILimitAll
	add("kill-tree", "job object, kill on close", StateEnforced, "")
	add("ui", "job UI restrictions + alternate desktop", StateEnforced, "clipboard, global atoms, user handles, desktop switch, system parameters, display settings, ExitWindows")
	if n := s.Limits.Procs; n > 0 {
		j.LimitFlags |= LimitActiveProcess
		j.ActiveProcs = uint32(n)
		add("processes", "job active-process limit", StateEnforced, fmt.Sprint(n))
		if n == 1 {
			p.NoChildren = true
		}
	}
	if m := s.Limits.Memory; m > 0 {
		j.LimitFlags |= LimitJobMemory
		j.JobMemory = uint64(m)
		add("memory", "job memory limit", StateEnforced, fmt.Sprint(m, " bytes committed"))
	}
	if t := s.Limits.CPUTime; t > 0 {
		j.LimitFlags |= LimitJobTime
		j.JobUserTime100 = int64(t / 100)
		add("cpu-time", "job user-time limit", StateDegraded, "counts user-mode time only")
	}
	if c := s.Limits.CPUs; c > 0 {
		n := s.HostCPUs
		if n < 1 {
			n = 1
		}
		rate := int(c * 10000 / float64(n))
		j.CPURate = uint32(max(1, min(10000, rate)))
		add("cpu", "job CPU rate hard cap", StateEnforced, fmt.Sprintf("%.2f%% of %d CPUs", float64(j.CPURate)/100, n))
	}
	if s.Limits.FileSize > 0 {
		lack("file-size", "Windows has no per-process file size limit")
	}
	if s.Limits.OpenFiles > 0 {
		lack("open-files", "Windows has no per-process handle limit")
	}
	if s.Limits.Stack > 0 {
		lack("stack", "the stack size is set by the executable's header")
	}

	p.Mitigations = MitigationStrictHandles | MitigationExtensionPoints | MitigationHeapTerminate |
		MitigationBottomUpASLR | MitigationForceRelocate | MitigationNoRemoteImages | MitigationNoLowLabelImage
	mit := "strict handle checks, no extension points, no remote or low-label images, heap terminate, ASLR"
	if s.NoDynamicCode {
		p.Mitigations |= MitigationNoDynamicCode
		mit += ", no dynamic code"
	}
	if s.NoWin32k {
		p.Mitigations |= MitigationWin32kDisable
		mit += ", no win32k"
	}
	if p.NoChildren {
		mit += ", child process creation blocked"
	}
	add("mitigations", "process mitigation policies", StateEnforced, mit)
	add("handles", "PROC_THREAD_ATTRIBUTE_HANDLE_LIST", StateEnforced, "only stdin, stdout, stderr")
	add("environment", "explicit environment block", StateEnforced, "")
	add("syscalls", "none", StateOff, "Windows has no system call filter for unprivileged processes")

	if len(refuse) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotEnforceable, strings.Join(refuse, "; "))
	}
	p.FallbackReport = fallbackReport(p.Report)
	return p, nil
}

// fallbackReport is the report for a restricted low-integrity token: the
// job and process attributes stay; file reads and the network are open.
func fallbackReport(r []Protection) []Protection {
	out := make([]Protection, 0, len(r))
	for _, x := range r {
		switch x.Name {
		case "filesystem":
			x = Protection{x.Name, "restricted token at low integrity", StateDegraded,
				"AppContainer unavailable: reads are not confined; writes only where low integrity may write; no path grants"}
		case "network":
			x = Protection{x.Name, "none", StateOff, "AppContainer unavailable: the network is not blocked"}
		}
		out = append(out, x)
	}
	return out
}

// Degrade marks protection name as degraded (for a step that failed at run
// time) and returns an error when the plan is strict.
func (p *Plan) Degrade(report *[]Protection, name, detail string) error {
	found := false
	for i := range *report {
		if (*report)[i].Name == name {
			(*report)[i].State, (*report)[i].Detail = StateDegraded, detail
			found = true
		}
	}
	if !found {
		*report = append(*report, Protection{name, "none", StateDegraded, detail})
	}
	if p.Strict {
		return fmt.Errorf("%w: %s: %s", ErrNotEnforceable, name, detail)
	}
	return nil
}

// Fallback checks that the restricted-token fallback may be used: a strict
// policy refuses it because file reads and the network stay open.
func (p *Plan) Fallback(why string) error {
	if p.Strict {
		return fmt.Errorf("%w: AppContainer unavailable (%s); the restricted-token fallback does not confine file reads or the network, so a strict policy refuses it (use best-effort to run degraded)", ErrNotEnforceable, why)
	}
	return nil
}

func trimSep(p string) string {
	for len(p) > 3 && (strings.HasSuffix(p, `\`) || strings.HasSuffix(p, "/")) {
		p = p[:len(p)-1]
	}
	return p
}

func samePath(a, b string) bool {
	return strings.EqualFold(strings.ReplaceAll(trimSep(a), "/", `\`), strings.ReplaceAll(trimSep(b), "/", `\`))
}

// under reports whether path is dir or inside one of dirs (case-insensitive).
func under(path string, dirs []string) bool {
	p := strings.ToLower(strings.ReplaceAll(path, "/", `\`))
	for _, d := range dirs {
		d = strings.ToLower(strings.ReplaceAll(trimSep(d), "/", `\`))
		if d != "" && (p == d || strings.HasPrefix(p, strings.TrimSuffix(d, `\`)+`\`)) {
			return true
		}
	}
	return false
}

func coveredBy(path string, gs []PathGrant) bool {
	for _, g := range gs {
		if under(path, []string{g.Path}) {
			return true
		}
	}
	return false
}
