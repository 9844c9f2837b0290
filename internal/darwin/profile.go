package darwin

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// NetMode is how much network the profile allows.
type NetMode int

const (
	// NetNone allows no network at all, not even unix sockets outside.
	NetNone NetMode = iota
	// NetProxy allows TCP only to localhost:ProxyPort (the broker's proxy).
	NetProxy
	// NetHost allows all network, DNS included.
	NetHost
)

// Spec is a profile request with canonical host paths.
type Spec struct {
	// Tag marks every denial in the unified log ("airlock:<Tag>"); broker
	// generated, letters, digits and '-' only.
	Tag string
	// ReadOnly and ReadWrite are canonical host paths granted as subpaths.
	ReadOnly  []string
	ReadWrite []string
	// Deny are canonical paths denied for read and write after all allows
	// (the last matching rule wins), e.g. credentials under a granted tree.
	Deny      []string
	Net       NetMode
	ProxyPort int // NetProxy only
	// NoFork denies process-fork: the target cannot start children.
	NoFork bool
	// TTYs are terminal devices the broker passed as stdio: readable and
	// writable, but no ioctl (no TIOCSTI input injection).
	TTYs []string
}

// Param is one -D NAME=value pair for sandbox-exec.
type Param struct{ Name, Value string }

// Profile is a generated SBPL profile and the parameters it references.
type Profile struct {
	Text   string
	Params []Param
}

// SandboxExec is the absolute path of the tool; never looked up in PATH.
const SandboxExec = "/usr/bin/sandbox-exec"

// Args returns sandbox-exec's arguments (without argv[0]) to run argv.
func (p Profile) Args(argv []string) []string {
	out := []string{"-p", p.Text}
	for _, pr := range p.Params {
		out = append(out, "-D", pr.Name+"="+pr.Value)
	}
	out = append(out, "--")
	return append(out, argv...)
}

// ParseArgs is the inverse of Args: it recovers the profile and argv.
func ParseArgs(args []string) (Profile, []string, error) {
	var p Profile
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-p":
			if i+1 >= len(args) {
				return p, nil, errors.New("-p without profile")
			}
			p.Text = args[i+1]
			i++
		case "-D":
			if i+1 >= len(args) {
				return p, nil, errors.New("-D without NAME=value")
			}
			k, v, ok := strings.Cut(args[i+1], "=")
			if !ok {
				return p, nil, fmt.Errorf("-D %q: want NAME=value", args[i+1])
			}
			p.Params = append(p.Params, Param{k, v})
			i++
		case "--":
			return p, args[i+1:], nil
		default:
			return p, nil, fmt.Errorf("unexpected argument %q", args[i])
		}
	}
	return p, nil, errors.New("missing --")
}

var tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`) })

// System locations every program needs to start: binaries, libraries, the
// dyld shared cache (under /System on macOS 11+, /private/var/db/dyld
// before), frameworks, time zones, TLS roots. Constants, spliced literally.
var systemReadSubpaths = []string{
	"/usr", "/bin", "/sbin", "/System", "/Library/Apple",
	"/Library/Developer/CommandLineTools",
	"/private/var/db/dyld", "/private/var/db/timezone", "/private/etc/ssl",
	"/private/preboot/Cryptexes",
}

var systemReadLiterals = []string{
	"/", "/private", "/private/etc", "/private/var",
	"/private/etc/hosts", "/private/etc/resolv.conf", "/private/etc/services",
	"/private/etc/protocols", "/private/etc/localtime", "/private/etc/shells",
	"/private/etc/passwd", "/private/etc/group", "/private/etc/profile",
	"/private/etc/bashrc", "/private/etc/zshenv", "/private/etc/zprofile",
	"/private/etc/zshrc", "/private/etc/paths", "/private/etc/man.conf",
	"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom",
}

var sysctlNames = []string{
	"kern.argmax", "kern.hostname", "kern.maxfiles", "kern.maxfilesperproc",
	"kern.maxproc", "kern.ngroups", "kern.osproductversion", "kern.osrelease",
	"kern.ostype", "kern.osvariant_status", "kern.osversion", "kern.pagesize",
	"kern.secure_kernel", "kern.usrstack64", "kern.version", "kern.boottime",
	"sysctl.proc_cputype", "sysctl.proc_native", "sysctl.proc_translated",
	"vm.loadavg", "vm.pagesize",
}

var sysctlPrefixes = []string{"hw.", "machdep.cpu."}

// Mach services a command-line program needs: logging, user/group lookup,
// notifications, certificate trust.
var machAllow = []string{
	"com.apple.system.logger", "com.apple.logd",
	"com.apple.system.opendirectoryd.libinfo",
	"com.apple.system.notification_center",
	"com.apple.trustd", "com.apple.trustd.agent",
}

// Services that give access to the user's session: clipboard, window
// server, app launching, input. Denied explicitly at the end so a later
// broad allow cannot reopen them.
var machDeny = []string{
	"com.apple.pasteboard.1", "com.apple.windowserver.active",
	"com.apple.windowserver.session", "com.apple.coreservices.launchservicesd",
	"com.apple.coreservices.appleevents", "com.apple.tccd", "com.apple.tccd.system",
	"com.apple.SecurityServer", "com.apple.securityd.xpc",
}

// Generate builds the profile for s.
func Generate(s Spec) (Profile, error) {
	if !tagRE().MatchString(s.Tag) {
		return Profile{}, fmt.Errorf("tag %q: want 1-64 letters, digits or '-'", s.Tag)
	}
	if s.Net == NetProxy && (s.ProxyPort < 1 || s.ProxyPort > 65535) {
		return Profile{}, fmt.Errorf("proxy port %d: want 1-65535", s.ProxyPort)
	}
	for _, l := range [][]string{s.ReadOnly, s.ReadWrite, s.Deny, s.TTYs} {
		for _, p := range l {
			if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
				return Profile{}, fmt.Errorf("path %q: want an absolute path without NUL", p)
			}
		}
	}
	var b strings.Builder
	var params []Param
	param := func(prefix string, i int, v string) string {
		n := fmt.Sprintf("%s_%d", prefix, i)
		params = append(params, Param{n, v})
		return fmt.Sprintf("(param %q)", n)
	}
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	msg := fmt.Sprintf("(with message %q)", "airlock:"+s.Tag)

	w("(version 1)")
	w("(deny default %s)", msg)
	w("")
	w("; processes: only within this sandbox")
	if s.NoFork {
		w("(deny process-fork %s)", msg)
	} else {
		w("(allow process-fork)")
	}
	w("(allow signal (target same-sandbox))")
	w("(allow process-info* (target same-sandbox))")
	w("")
	w("; system locations programs need to start")
	for _, p := range systemReadSubpaths {
		w("(allow file-read* process-exec file-map-executable (subpath %q))", p)
	}
	for _, p := range systemReadLiterals {
		w("(allow file-read* (literal %q))", p)
	}
	w("; stat anywhere, so realpath and getcwd work; contents stay denied")
	w("(allow file-read-metadata)")
	w("(allow file-write-data file-ioctl (literal \"/dev/null\") (literal \"/dev/zero\"))")
	w("(allow file-read* file-write-data (subpath \"/dev/fd\"))")
	w("(allow sysctl-read")
	for _, n := range sysctlNames {
		w("  (sysctl-name %q)", n)
	}
	for _, n := range sysctlPrefixes {
		w("  (sysctl-name-prefix %q)", n)
	}
	w(")")
	w("(allow mach-lookup")
	for _, n := range machAllow {
		w("  (global-name %q)", n)
	}
	w(")")
	w("(allow ipc-posix-sem)")
	w("(allow ipc-posix-shm-read-data (ipc-posix-name \"apple.shm.notification_center\"))")
	w("")
	w("; granted paths")
	for i, p := range dedupe(s.ReadOnly) {
		w("(allow file-read* process-exec file-map-executable (subpath %s))", param("RO", i, p))
	}
	for i, p := range dedupe(s.ReadWrite) {
		w("(allow file-read* file-write* process-exec file-map-executable (subpath %s))", param("RW", i, p))
	}
	for i, p := range dedupe(s.TTYs) {
		w("(allow file-read-data file-write-data (literal %s))", param("TTY", i, p))
	}
	w("")
	switch s.Net {
	case NetNone:
		w("; network: none (default deny)")
	case NetProxy:
		w("; network: only the broker's proxy on localhost")
		w("(allow network-outbound (remote ip \"localhost:%d\"))", s.ProxyPort)
	case NetHost:
		w("; network: host")
		w("(allow network* system-socket)")
		w("(allow mach-lookup (global-name \"com.apple.dnssd.service\") (global-name \"com.apple.SystemConfiguration.configd\"))")
	}
	w("")
	w("; denials after the allows: the last matching rule wins")
	deny := dedupe(s.Deny)
	for i, p := range deny {
		w("(deny file-read* file-write* process-exec file-map-executable (subpath %s) %s)", param("DENY", i, p), msg)
	}
	for i, p := range ancestors(deny) {
		w("(deny file-write-unlink (literal %s) %s)", param("DENYUP", i, p), msg)
	}
	w("(deny mach-lookup")
	for _, n := range machDeny {
		w("  (global-name %q)", n)
	}
	w("  %s)", msg)
	w("(deny iokit-open %s)", msg)
	return Profile{Text: b.String(), Params: params}, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range in {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// ancestors lists every proper ancestor (except /) of the paths, sorted:
// renaming one would move a denied path out from under its rule.
func ancestors(paths []string) []string {
	set := map[string]bool{}
	for _, p := range paths {
		for d := parent(p); d != "/" && d != ""; d = parent(d) {
			set[d] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func parent(p string) string {
	p = strings.TrimRight(p, "/")
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
