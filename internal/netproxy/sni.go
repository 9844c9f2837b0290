package netproxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// errHelloSeen stops the TLS handshake once the ClientHello is parsed.
var errHelloSeen = errors.New("client hello seen")

// peekSNI reads the client's first TLS record(s) and returns the server
// name of a ClientHello (ok false when the stream is not TLS or the client
// sent nothing before the deadline) and every byte read, which must be
// forwarded upstream first. Nothing is ever written to the client.
func peekSNI(c net.Conn, wait time.Duration) (sni string, ok bool, read []byte) {
	rec := &recordingConn{Conn: c}
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	var first [1]byte
	n, err := c.Read(first[:])
	if n == 0 || err != nil {
		return "", false, nil
	}
	rec.buf.Write(first[:n])
	if first[0] != 0x16 { // not a TLS handshake record
		return "", false, rec.buf.Bytes()
	}
	rec.replay = bytes.NewReader(rec.buf.Bytes())
	srv := tls.Server(rec, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni, ok = h.ServerName, true
		return nil, errHelloSeen
	}})
	srv.Handshake()
	return sni, ok, rec.buf.Bytes()
}

// recordingConn feeds the TLS parser: first the replayed byte(s), then the
// client, keeping a copy of everything; writes are dropped.
type recordingConn struct {
	net.Conn
	replay *bytes.Reader
	buf    bytes.Buffer
}

func (r *recordingConn) Read(b []byte) (int, error) {
	if r.replay != nil && r.replay.Len() > 0 {
		return r.replay.Read(b)
	}
	n, err := r.Conn.Read(b)
	r.buf.Write(b[:n])
	return n, err
}

func (r *recordingConn) Write(b []byte) (int, error) { return len(b), nil }
