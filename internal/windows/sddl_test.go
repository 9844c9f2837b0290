package windows

import "testing"

const acSID = "S-1-15-2-1-2-3-4-5-6-7"

func TestACE(t *testing.T) {
	for _, tc := range []struct {
		a    Access
		dir  bool
		want string
	}{
		{Read, true, "(A;OICI;0x1200a9;;;" + acSID + ")"},
		{Read, false, "(A;;0x1200a9;;;" + acSID + ")"},
		{Modify, true, "(A;OICI;0x1301bf;;;" + acSID + ")"},
	} {
		if got := ACE(acSID, tc.a, tc.dir); got != tc.want {
			t.Errorf("ACE(%v, dir=%v) = %s, want %s", tc.a, tc.dir, got, tc.want)
		}
	}
	// Modify must not include WRITE_DAC (0x40000) or WRITE_OWNER (0x80000):
	// the sandbox could otherwise grant itself more.
	if m := Modify.Mask(); m&0xC0000 != 0 {
		t.Errorf("Modify mask %#x includes WRITE_DAC or WRITE_OWNER", m)
	}
}

func TestAddRemoveACE(t *testing.T) {
	ace := ACE(acSID, Read, true)
	for _, tc := range []struct {
		name, in, added string
	}{
		{"empty", "D:", "D:" + ace},
		{"explicit only", "D:PAI(A;;FA;;;SY)(A;;FA;;;BA)", "D:PAI(A;;FA;;;SY)(A;;FA;;;BA)" + ace},
		{"before inherited", "D:AI(D;;FA;;;S-1-5-7)(A;OICIID;FA;;;SY)", "D:AI(D;;FA;;;S-1-5-7)" + ace + "(A;OICIID;FA;;;SY)"},
		{"conditional ACE kept whole", `D:(XA;;FX;;;S-1-1-0;(@User.Title=="PM"))`, `D:(XA;;FX;;;S-1-1-0;(@User.Title=="PM"))` + ace},
		{"null DACL unchanged", "D:NO_ACCESS_CONTROL", "D:NO_ACCESS_CONTROL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AddACE(tc.in, ace)
			if err != nil || got != tc.added {
				t.Fatalf("AddACE(%s) = %s, %v; want %s", tc.in, got, err, tc.added)
			}
			back, err := RemoveSID(got, acSID)
			if err != nil || back != tc.in {
				t.Fatalf("RemoveSID(%s) = %s, %v; want %s", got, back, err, tc.in)
			}
		})
	}
}

func TestRemoveSIDKeepsOthers(t *testing.T) {
	in := "D:(A;;FA;;;SY)(A;OICI;0x1200a9;;;" + acSID + ")(A;;FR;;;S-1-15-2-9)(A;ID;FR;;;" + acSID + ")"
	got, err := RemoveSID(in, acSID)
	want := "D:(A;;FA;;;SY)(A;;FR;;;S-1-15-2-9)(A;ID;FR;;;" + acSID + ")"
	if err != nil || got != want {
		t.Fatalf("RemoveSID = %s, %v; want %s", got, err, want)
	}
	if !HasSID(in, acSID) || HasSID(got, acSID) {
		t.Error("HasSID disagrees with RemoveSID")
	}
}

func TestParseDACLErrors(t *testing.T) {
	for _, s := range []string{"O:SYD:(A;;FA;;;SY)", "D:(A;;FA;;;SY", "D:(A;;FA;;;SY))", "D:(A;;FA;;;SY)S:(ML;;NW;;;LW)"} {
		if _, err := AddACE(s, "(A;;FA;;;SY)"); err == nil {
			t.Errorf("AddACE(%q) accepted a malformed DACL", s)
		}
	}
	if !Protected("D:PAI(A;;FA;;;SY)") || Protected("D:AI(A;;FA;;;SY)") {
		t.Error("Protected misreads the DACL flags")
	}
}
