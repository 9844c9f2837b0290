package windows

import "testing"

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		exit        uint32
		ev          Evidence
		status, sig string
	}{
		{0, Evidence{}, "OK", ""},
		{3, Evidence{}, "NonZeroExit", ""},
		{0, Evidence{MemoryLimit: true}, "OK", ""},
		{1, Evidence{MemoryLimit: true}, "MemoryLimit", ""},
		{0xC0000017, Evidence{MemoryLimit: true}, "MemoryLimit", ""},
		{1, Evidence{ProcLimit: true}, "ProcessLimit", ""},
		{1816, Evidence{JobTime: true}, "TimeLimit", ""},
		{0, Evidence{JobTime: true}, "TimeLimit", ""},
		{1, Evidence{Killed: true}, "Signaled", "SIGKILL"},
		{0xC0000005, Evidence{}, "Signaled", "STATUS_ACCESS_VIOLATION"},
		{0xC0001234, Evidence{}, "Signaled", "STATUS_0xC0001234"},
	} {
		st, sig := Verdict(tc.exit, tc.ev)
		if st != tc.status || sig != tc.sig {
			t.Errorf("Verdict(%#x, %+v) = %s %s, want %s %s", tc.exit, tc.ev, st, sig, tc.status, tc.sig)
		}
	}
	var e Evidence
	for _, m := range []uint32{MsgNewProcess, MsgExitProcess, MsgJobMemoryLimit, MsgActiveProcessLimit, MsgEndOfJobTime} {
		e.Note(m)
	}
	if e != (Evidence{JobTime: true, ProcLimit: true, MemoryLimit: true}) {
		t.Errorf("Note gave %+v", e)
	}
}
