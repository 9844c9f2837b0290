package airlock

import "golang.org/x/sys/unix"

// maxEtcFile is the largest /etc file copied into the sandbox.
const maxEtcFile = 1 << 20

// readEtc reads a regular file of at most maxEtcFile bytes, or reports a
// directory, with three or four plain system calls: DefaultPolicy reads
// about thirty of these on every run, and os.ReadFile's poller set-up
// tripled the calls. O_NONBLOCK: opening a FIFO must not wait.
func readEtc(path string) (data []byte, dir, ok bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, false, false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return nil, false, false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return nil, true, true
	case unix.S_IFREG:
	default:
		return nil, false, false
	}
	if st.Size > maxEtcFile {
		return nil, false, false
	}
	// One byte more than the size: a file that grew is read to its end.
	buf := make([]byte, st.Size+1)
	n := 0
	for {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, false, false
		}
		if m == 0 {
			return buf[:n], false, true
		}
		n += m
		if n == len(buf) {
			if len(buf) > maxEtcFile {
				return nil, false, false
			}
			buf = append(buf, make([]byte, 4096)...)
		}
	}
}
