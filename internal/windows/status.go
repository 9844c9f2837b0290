package windows

import "fmt"

// Evidence is what the job object reported during a run.
type Evidence struct {
	JobTime     bool // JOB_OBJECT_MSG_END_OF_JOB_TIME
	ProcLimit   bool // JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT
	MemoryLimit bool // JOB_OBJECT_MSG_JOB_MEMORY_LIMIT / PROCESS_MEMORY_LIMIT
	Killed      bool // the broker terminated the job
}

// Job notification message ids (winnt.h).
const (
	MsgEndOfJobTime       = 1
	MsgEndOfProcessTime   = 2
	MsgActiveProcessLimit = 3
	MsgActiveProcessZero  = 4
	MsgNewProcess         = 6
	MsgExitProcess        = 7
	MsgAbnormalExit       = 8
	MsgProcessMemoryLimit = 9
	MsgJobMemoryLimit     = 10
)

// Note records one job notification.
func (e *Evidence) Note(msg uint32) {
	switch msg {
	case MsgEndOfJobTime, MsgEndOfProcessTime:
		e.JobTime = true
	case MsgActiveProcessLimit:
		e.ProcLimit = true
	case MsgJobMemoryLimit, MsgProcessMemoryLimit:
		e.MemoryLimit = true
	}
}

// Verdict decides a run's status from the exit code and the job's evidence.
// A limit that was hit but that the program survived (it handled the
// failed allocation or CreateProcess and exited 0) is not a failure.
// Statuses are airlock.Status strings; signal names an NTSTATUS crash.
func Verdict(exit uint32, e Evidence) (status, signal string) {
	switch {
	case e.JobTime:
		return "TimeLimit", ""
	case exit == 0:
		return "OK", ""
	case e.MemoryLimit:
		return "MemoryLimit", ""
	case e.ProcLimit:
		return "ProcessLimit", ""
	case e.Killed:
		return "Signaled", "SIGKILL"
	}
	if name, ok := ntstatus[exit]; ok {
		return "Signaled", name
	}
	if exit >= 0xC0000000 {
		return "Signaled", fmt.Sprintf("STATUS_0x%08X", exit)
	}
	return "NonZeroExit", ""
}

// ntstatus names the exception codes a crashing process exits with.
var ntstatus = map[uint32]string{
	0xC0000005: "STATUS_ACCESS_VIOLATION",
	0xC000001D: "STATUS_ILLEGAL_INSTRUCTION",
	0xC0000094: "STATUS_INTEGER_DIVIDE_BY_ZERO",
	0xC00000FD: "STATUS_STACK_OVERFLOW",
	0xC0000409: "STATUS_STACK_BUFFER_OVERRUN",
	0xC0000017: "STATUS_NO_MEMORY",
	0xC000013A: "STATUS_CONTROL_C_EXIT",
	0xC0000142: "STATUS_DLL_INIT_FAILED",
	0xC0000135: "STATUS_DLL_NOT_FOUND",
	0xC0000022: "STATUS_ACCESS_DENIED",
}
