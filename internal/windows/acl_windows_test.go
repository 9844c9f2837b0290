package windows

import (
	"os"
	"path/filepath"
	"testing"
)

// The journal with the real DACL store: a grant shows up in the DACL and
// revoking restores it exactly. Uses MkdirTemp, not t.TempDir, because
// Wine cannot run Go's RemoveAll.
func TestNamedDACLStoreGrantRevoke(t *testing.T) {
	dir, err := os.MkdirTemp("", "airlock-acl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sub := filepath.Join(dir, "granted")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	st := NamedDACLStore{}
	before, err := st.ReadDACL(sub)
	if err != nil {
		t.Fatal(err)
	}
	j := &Journal{File: filepath.Join(dir, "grants.journal"), Store: st, Self: Self(), Alive: Alive, Run: "t"}
	r, err := j.Grant(sub, acSID, Modify, true)
	if err != nil {
		t.Fatalf("grant on %s (DACL %s): %v", sub, before, err)
	}
	granted, _ := st.ReadDACL(sub)
	if err := j.Revoke(r); err != nil {
		t.Fatal(err)
	}
	after, _ := st.ReadDACL(sub)
	if after != before {
		t.Errorf("DACL not restored:\nbefore %s\nafter  %s", before, after)
	}
	if recs, _ := j.Pending(); len(recs) != 0 {
		t.Errorf("journal not emptied: %+v", recs)
	}
	if !HasSID(granted, acSID) {
		t.Skipf("host does not keep per-SID ACEs (Wine maps DACLs to file modes): granted DACL %s", granted)
	}
}

func TestAliveSelf(t *testing.T) {
	if !Alive(Self()) {
		t.Error("this process is not alive")
	}
	s := Self()
	s.Start++
	if Alive(s) {
		t.Error("a reused pid (other start time) counts as alive")
	}
}
