package landlock

import "strconv"

// Filesystem access rights (struct landlock_ruleset_attr.handled_access_fs).
const (
	AccessFSExecute    uint64 = 1 << 0
	AccessFSWriteFile  uint64 = 1 << 1
	AccessFSReadFile   uint64 = 1 << 2
	AccessFSReadDir    uint64 = 1 << 3
	AccessFSRemoveDir  uint64 = 1 << 4
	AccessFSRemoveFile uint64 = 1 << 5
	AccessFSMakeChar   uint64 = 1 << 6
	AccessFSMakeDir    uint64 = 1 << 7
	AccessFSMakeReg    uint64 = 1 << 8
	AccessFSMakeSock   uint64 = 1 << 9
	AccessFSMakeFifo   uint64 = 1 << 10
	AccessFSMakeBlock  uint64 = 1 << 11
	AccessFSMakeSym    uint64 = 1 << 12
	AccessFSRefer      uint64 = 1 << 13 // ABI 2
	AccessFSTruncate   uint64 = 1 << 14 // ABI 3
	AccessFSIoctlDev   uint64 = 1 << 15 // ABI 5
)

// Network access rights (handled_access_net), ABI 4.
const (
	AccessNetBindTCP    uint64 = 1 << 0
	AccessNetConnectTCP uint64 = 1 << 1
)

// Scopes (struct landlock_ruleset_attr.scoped), ABI 6.
const (
	ScopeAbstractUnixSocket uint64 = 1 << 0
	ScopeSignal             uint64 = 1 << 1
)

// Flags of landlock_restrict_self, ABI 7 (audit logging of denials).
const (
	RestrictSelfLogSameExecOff   uint32 = 1 << 0
	RestrictSelfLogNewExecOn     uint32 = 1 << 1
	RestrictSelfLogSubdomainsOff uint32 = 1 << 2
)

// Rule types and flags of the landlock syscalls.
const (
	ruleTypePathBeneath = 1
	ruleTypeNetPort     = 2

	createRulesetVersion = 1 << 0
)

// Newest ABI whose rights this package knows. A newer kernel is used at
// this level: the ruleset handles the rights listed here, no more.
const MaxKnownABI = 7

// fsRightsV1 are the filesystem rights of ABI 1.
const fsRightsV1 = AccessFSExecute | AccessFSWriteFile | AccessFSReadFile |
	AccessFSReadDir | AccessFSRemoveDir | AccessFSRemoveFile |
	AccessFSMakeChar | AccessFSMakeDir | AccessFSMakeReg | AccessFSMakeSock |
	AccessFSMakeFifo | AccessFSMakeBlock | AccessFSMakeSym

// fileRights are the rights that can be granted on a non-directory; a
// path_beneath rule on a file with any other right gets EINVAL.
const fileRights = AccessFSExecute | AccessFSWriteFile | AccessFSReadFile |
	AccessFSTruncate | AccessFSIoctlDev

// Access classes of a Request.
const (
	readOnlyRights  = AccessFSExecute | AccessFSReadFile | AccessFSReadDir
	readWriteRights = ^uint64(0) // every fs right the ABI knows
)

// FSRights returns the filesystem rights Landlock knows at abi.
func FSRights(abi int) uint64 {
	if abi < 1 {
		return 0
	}
	r := fsRightsV1
	if abi >= 2 {
		r |= AccessFSRefer
	}
	if abi >= 3 {
		r |= AccessFSTruncate
	}
	if abi >= 5 {
		r |= AccessFSIoctlDev
	}
	return r
}

// NetRights returns the network rights Landlock knows at abi.
func NetRights(abi int) uint64 {
	if abi >= 4 {
		return AccessNetBindTCP | AccessNetConnectTCP
	}
	return 0
}

// Scopes returns the scopes Landlock knows at abi.
func Scopes(abi int) uint64 {
	if abi >= 6 {
		return ScopeAbstractUnixSocket | ScopeSignal
	}
	return 0
}

// RestrictFlags returns the landlock_restrict_self flags known at abi.
func RestrictFlags(abi int) uint32 {
	if abi >= 7 {
		return RestrictSelfLogSameExecOff | RestrictSelfLogNewExecOn | RestrictSelfLogSubdomainsOff
	}
	return 0
}

var fsNames = []string{
	"execute", "write_file", "read_file", "read_dir", "remove_dir",
	"remove_file", "make_char", "make_dir", "make_reg", "make_sock",
	"make_fifo", "make_block", "make_sym", "refer", "truncate", "ioctl_dev",
}

var netNames = []string{"bind_tcp", "connect_tcp"}

var scopeNames = []string{"abstract_unix_socket", "signal"}

// names renders a bit mask with the given bit names, "none" when empty.
func names(mask uint64, table []string) string {
	s := ""
	for i, n := range table {
		if mask&(1<<i) != 0 {
			if s != "" {
				s += ","
			}
			s += n
		}
	}
	if rest := mask &^ (1<<len(table) - 1); rest != 0 {
		if s != "" {
			s += ","
		}
		s += "0x" + strconv.FormatUint(rest, 16)
	}
	if s == "" {
		return "none"
	}
	return s
}
