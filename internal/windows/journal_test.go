package windows

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memStore is a DACLStore over a map; paths not in it do not exist.
type memStore struct {
	dacl   map[string]string
	writes int
	failAt int // fail the n-th write (1-based); 0: never
}

func (m *memStore) ReadDACL(p string) (string, error) {
	d, ok := m.dacl[p]
	if !ok {
		return "", fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return d, nil
}

func (m *memStore) WriteDACL(p, s string) error {
	m.writes++
	if m.failAt == m.writes {
		return errors.New("access denied")
	}
	if _, ok := m.dacl[p]; !ok {
		return fs.ErrNotExist
	}
	m.dacl[p] = s
	return nil
}

type crash struct{ at string }

const (
	origWork = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;S-1-5-21-1-2-3-1001)"
	origData = "D:AI(A;OICIID;FA;;;SY)"
)

var dead = Owner{PID: 100, Start: 1}

func newJournal(t *testing.T, dir string, st DACLStore, self Owner) *Journal {
	return &Journal{File: filepath.Join(dir, "airlock", "grants.journal"), Store: st, Self: self, Run: fmt.Sprint(self.PID),
		Alive: func(o Owner) bool { return o != dead }}
}

// run grants both paths as a broker would, stopping where crashAt says.
func run(t *testing.T, j *Journal, crashAt string) (crashed bool) {
	t.Helper()
	j.crashHook = func(step string) {
		if step == crashAt {
			panic(crash{step})
		}
	}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	w, err := j.Grant(`C:\work`, acSID, Modify, true)
	if err != nil {
		t.Fatal(err)
	}
	d, err := j.Grant(`C:\data`, acSID, Read, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Revoke(d); err != nil {
		t.Fatal(err)
	}
	if err := j.Revoke(w); err != nil {
		t.Fatal(err)
	}
	return false
}

func TestJournalCrashRepair(t *testing.T) {
	for _, at := range []string{"", "journaled", "granted", "restored"} {
		t.Run("crash at "+at, func(t *testing.T) {
			dir := t.TempDir()
			st := &memStore{dacl: map[string]string{`C:\work`: origWork, `C:\data`: origData}}
			j := newJournal(t, dir, st, dead)
			crashed := run(t, j, at)
			if crashed != (at != "") {
				t.Fatalf("crashed=%v", crashed)
			}
			if at == "granted" && !HasSID(st.dacl[`C:\work`], acSID) {
				t.Fatal("the grant was not applied before the crash")
			}
			recs, err := j.Pending()
			if err != nil {
				t.Fatal(err)
			}
			if (len(recs) > 0) != crashed {
				t.Fatalf("after crash=%v, %d records pending", crashed, len(recs))
			}
			// A new broker repairs what the dead one left.
			next := newJournal(t, dir, st, Owner{PID: 200, Start: 2})
			done, err := next.Repair()
			if err != nil {
				t.Fatal(err)
			}
			if len(done) != len(recs) {
				t.Errorf("repaired %d of %d records", len(done), len(recs))
			}
			if st.dacl[`C:\work`] != origWork || st.dacl[`C:\data`] != origData {
				t.Errorf("DACLs not restored: %q", st.dacl)
			}
			if left, _ := next.Pending(); len(left) != 0 {
				t.Errorf("records left after repair: %+v", left)
			}
			if _, err := os.Stat(j.File); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("empty journal not removed: %v", err)
			}
		})
	}
}

func TestJournalKeepsLiveAndForeignChanges(t *testing.T) {
	dir := t.TempDir()
	st := &memStore{dacl: map[string]string{`C:\work`: origWork, `C:\data`: origData}}
	live := Owner{PID: 300, Start: 3}
	lj := newJournal(t, dir, st, live)
	if _, err := lj.Grant(`C:\data`, "S-1-15-2-77", Read, true); err != nil {
		t.Fatal(err)
	}
	dj := newJournal(t, dir, st, dead)
	if _, err := dj.Grant(`C:\work`, acSID, Modify, true); err != nil {
		t.Fatal(err)
	}
	// The user adds an ACE of their own after the grant.
	st.dacl[`C:\work`] += "(A;;FR;;;S-1-5-32-545)"
	done, err := newJournal(t, dir, st, Owner{PID: 400, Start: 4}).Repair()
	if err != nil || len(done) != 1 || done[0].SID != acSID {
		t.Fatalf("repair: %+v, %v", done, err)
	}
	if got, want := st.dacl[`C:\work`], origWork+"(A;;FR;;;S-1-5-32-545)"; got != want {
		t.Errorf("work DACL %q, want %q (user's change kept, sandbox ACE gone)", got, want)
	}
	if !HasSID(st.dacl[`C:\data`], "S-1-15-2-77") {
		t.Error("a running broker's grant was repaired away")
	}
	if recs, _ := lj.Pending(); len(recs) != 1 || recs[0].Owner != live {
		t.Errorf("pending %+v, want the live record only", recs)
	}
}

func TestJournalTornAndMissing(t *testing.T) {
	dir := t.TempDir()
	st := &memStore{dacl: map[string]string{`C:\work`: origWork}}
	j := newJournal(t, dir, st, dead)
	if _, err := j.Grant(`C:\work`, acSID, Read, true); err != nil {
		t.Fatal(err)
	}
	// A crash tore the next append; the path of a third record is gone.
	f, _ := os.OpenFile(j.File, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"run":"100","seq":2,"path":"C:\\wo`)
	f.Close()
	gone := Record{Run: "100", Seq: 3, Owner: dead, Path: `C:\gone`, SID: acSID, Prev: "D:"}
	if err := j.append(&gone); err != nil {
		t.Fatal(err)
	}
	done, err := newJournal(t, dir, st, Owner{PID: 5, Start: 5}).Repair()
	if err != nil || len(done) != 2 {
		t.Fatalf("repair: %d done, %v", len(done), err)
	}
	if st.dacl[`C:\work`] != origWork {
		t.Errorf("DACL %q", st.dacl[`C:\work`])
	}
}

func TestJournalGrantFailure(t *testing.T) {
	dir := t.TempDir()
	st := &memStore{dacl: map[string]string{`C:\work`: origWork}, failAt: 1}
	j := newJournal(t, dir, st, Owner{PID: 6, Start: 6})
	if _, err := j.Grant(`C:\work`, acSID, Modify, true); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("grant error %v", err)
	}
	if recs, _ := j.Pending(); len(recs) != 0 {
		t.Errorf("failed grant left records: %+v", recs)
	}
	if st.dacl[`C:\work`] != origWork {
		t.Errorf("DACL changed: %q", st.dacl[`C:\work`])
	}
	if _, err := j.Grant(`C:\missing`, acSID, Read, true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
}

func TestJournalRepairFailureKeepsRecord(t *testing.T) {
	dir := t.TempDir()
	st := &memStore{dacl: map[string]string{`C:\work`: origWork}}
	if _, err := newJournal(t, dir, st, dead).Grant(`C:\work`, acSID, Read, true); err != nil {
		t.Fatal(err)
	}
	st.failAt = st.writes + 1
	j := newJournal(t, dir, st, Owner{PID: 7, Start: 7})
	if _, err := j.Repair(); err == nil {
		t.Fatal("repair hid a failed restore")
	}
	if recs, _ := j.Pending(); len(recs) != 1 {
		t.Fatalf("record dropped although not restored: %+v", recs)
	}
	if _, err := j.Repair(); err != nil || st.dacl[`C:\work`] != origWork {
		t.Errorf("second repair: %v, DACL %q", err, st.dacl[`C:\work`])
	}
}
