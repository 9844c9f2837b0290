package windows

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// DACLStore reads and writes the DACL of a file or directory as SDDL
// ("D:..."). The Windows one calls Get/SetNamedSecurityInfo; tests use a
// map.
type DACLStore interface {
	ReadDACL(path string) (string, error)
	WriteDACL(path, sddl string) error
}

// Owner identifies the broker process that made a grant: a pid alone could
// be reused, so its start time is kept too.
type Owner struct {
	PID   int   `json:"pid"`
	Start int64 `json:"start"`
}

// Record is one journaled grant.
type Record struct {
	Run   string `json:"run"`
	Seq   int    `json:"seq"`
	Owner Owner  `json:"owner"`
	Path  string `json:"path"`
	SID   string `json:"sid"`
	// Prev is the DACL before the grant; Applied the one airlock wrote.
	Prev    string `json:"prev"`
	Applied string `json:"applied"`
}

// Journal makes ACL grants crash-safe: a grant is recorded (and synced)
// before the DACL changes and forgotten only after it is undone, so a later
// run can undo the grants of a broker that died.
type Journal struct {
	// File is the journal; File+".lock" serialises brokers.
	File  string
	Store DACLStore
	// Self is this broker; Alive says whether another broker still runs.
	Self  Owner
	Alive func(Owner) bool
	// Run names this broker's records.
	Run string

	mu  sync.Mutex
	seq int
	// crashHook, when set, runs between the steps of Grant and Revoke so
	// tests can stop a broker in the middle.
	crashHook func(step string)
}

func (j *Journal) hook(step string) {
	if j.crashHook != nil {
		j.crashHook(step)
	}
}

// Grant gives sid access a to path, recording the previous DACL first.
func (j *Journal) Grant(path, sid string, a Access, dir bool) (*Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	prev, err := j.Store.ReadDACL(path)
	if err != nil {
		return nil, fmt.Errorf("read ACL of %s: %w", path, err)
	}
	applied, err := AddACE(prev, ACE(sid, a, dir))
	if err != nil {
		return nil, fmt.Errorf("ACL of %s: %w", path, err)
	}
	j.seq++
	r := &Record{Run: j.Run, Seq: j.seq, Owner: j.Self, Path: path, SID: sid, Prev: prev, Applied: applied}
	if err := j.append(r); err != nil {
		return nil, fmt.Errorf("grants journal: %w", err)
	}
	j.hook("journaled")
	if err := j.Store.WriteDACL(path, applied); err != nil {
		// Put back whatever is there now, then forget the record.
		uerr := j.undo(*r)
		if uerr == nil {
			uerr = j.remove(r)
		}
		return nil, errors.Join(fmt.Errorf("grant %s on %s: %w", a, path, err), uerr)
	}
	j.hook("granted")
	return r, nil
}

// Revoke undoes a grant and forgets it.
func (j *Journal) Revoke(r *Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.undo(*r); err != nil {
		return fmt.Errorf("restore ACL of %s: %w", r.Path, err)
	}
	j.hook("restored")
	return j.remove(r)
}

// undo restores the DACL saved in r. When someone changed the DACL since
// the grant, only the sandbox's own ACEs are taken out, keeping their
// change.
func (j *Journal) undo(r Record) error {
	cur, err := j.Store.ReadDACL(r.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	want := r.Prev
	if cur != r.Applied {
		if !HasSID(cur, r.SID) {
			return nil // never applied, or already undone
		}
		if want, err = RemoveSID(cur, r.SID); err != nil {
			return err
		}
	}
	return j.Store.WriteDACL(r.Path, want)
}

// Repair undoes the grants of brokers that are no longer running, newest
// first, and returns what it undid. Records it cannot undo stay journaled
// and are reported in the error.
func (j *Journal) Repair() ([]Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var done []Record
	var errs []error
	err := j.locked(func() error {
		recs, err := j.read()
		if err != nil {
			return err
		}
		keep := make([]bool, len(recs))
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			if r.Owner == j.Self || (j.Alive != nil && j.Alive(r.Owner)) {
				keep[i] = true
				continue
			}
			if err := j.undo(r); err != nil {
				errs = append(errs, fmt.Errorf("restore ACL of %s: %w", r.Path, err))
				keep[i] = true
				continue
			}
			done = append(done, r)
		}
		var rest []Record
		for i, r := range recs {
			if keep[i] {
				rest = append(rest, r)
			}
		}
		return j.write(rest)
	})
	return done, errors.Join(append([]error{err}, errs...)...)
}

// Pending lists the journaled records.
func (j *Journal) Pending() ([]Record, error) {
	var recs []Record
	err := j.locked(func() (err error) { recs, err = j.read(); return })
	return recs, err
}

func (j *Journal) append(r *Record) error {
	return j.locked(func() error {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(j.File), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(j.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		// A torn earlier line must not swallow this one.
		if _, err := f.Write(append(append([]byte{'\n'}, line...), '\n')); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

func (j *Journal) remove(r *Record) error {
	return j.locked(func() error {
		recs, err := j.read()
		if err != nil {
			return err
		}
		rest := recs[:0]
		for _, x := range recs {
			if x.Run != r.Run || x.Seq != r.Seq {
				rest = append(rest, x)
			}
		}
		return j.write(rest)
	})
}

// read parses the journal; a line that does not parse is a write torn by a
// crash before the DACL was touched, so it is skipped.
func (j *Journal) read() ([]Record, error) {
	b, err := os.ReadFile(j.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r Record
		if len(bytes.TrimSpace(sc.Bytes())) == 0 || json.Unmarshal(sc.Bytes(), &r) != nil || r.Path == "" {
			continue
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// write replaces the journal atomically (or removes it when empty).
func (j *Journal) write(recs []Record) error {
	if len(recs) == 0 {
		err := os.Remove(j.File)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return err
	}
	var buf bytes.Buffer
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	tmp := j.File + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, j.File)
}

// locked runs fn holding the journal's lock file, which serialises brokers
// of the same user.
func (j *Journal) locked(fn func() error) error {
	if err := os.MkdirAll(filepath.Dir(j.File), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(j.File+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	defer unlockFile(f)
	return fn()
}
