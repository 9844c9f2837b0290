package netproxy

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
)

// pump copies every byte in order across the switch from the small buffer
// to a large one, and gives every large buffer back.
func TestPump(t *testing.T) {
	data := make([]byte, 5*bigBufSize+123)
	rand.New(rand.NewSource(1)).Read(data)
	for _, chunk := range []int{1, 1000, smallBufSize, bigBufSize + 7} {
		var out bytes.Buffer
		n, err := pump(&out, &chunked{r: bytes.NewReader(data), max: chunk})
		if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("chunks of %d: copied %d of %d (err %v), equal %v", chunk, n, len(data), err, bytes.Equal(out.Bytes(), data))
		}
	}
	if len(bigSlots) != 0 {
		t.Errorf("%d large buffers still taken after every copy ended", len(bigSlots))
	}
}

// chunked returns at most max bytes per Read, like a socket.
type chunked struct {
	r   io.Reader
	max int
}

func (c *chunked) Read(b []byte) (int, error) { return c.r.Read(b[:min(len(b), c.max)]) }
