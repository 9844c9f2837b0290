package airlock

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readEtc copies regular files, reports directories, and skips anything
// else without blocking: a FIFO in /etc must not hang every run.
func TestReadEtc(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	want := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	if err := os.WriteFile(small, want, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxEtcFile+1), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	type result struct {
		data    []byte
		dir, ok bool
	}
	done := make(chan result, 1)
	go func() {
		d, isDir, ok := readEtc(fifo)
		done <- result{d, isDir, ok}
	}()
	select {
	case r := <-done:
		if r.ok {
			t.Errorf("a FIFO was read as %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("readEtc blocked on a FIFO")
	}
	for _, c := range []struct {
		path    string
		data    []byte
		dir, ok bool
	}{
		{small, want, false, true},
		{link, want, false, true},
		{empty, []byte{}, false, true},
		{dir, nil, true, true},
		{big, nil, false, false},
		{filepath.Join(dir, "missing"), nil, false, false},
		{"/dev/null", nil, false, false},
	} {
		data, isDir, ok := readEtc(c.path)
		if ok != c.ok || isDir != c.dir || !bytes.Equal(data, c.data) {
			t.Errorf("%s: got %d bytes, dir %v, ok %v; want %d bytes, dir %v, ok %v", c.path, len(data), isDir, ok, len(c.data), c.dir, c.ok)
		}
	}
}
