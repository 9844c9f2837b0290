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

// helloWait is how long the broker waits for a whole ClientHello.
var helloWait = 10 * time.Second

// helloKind is what the client's first bytes on a TLS port were.
type helloKind int

const (
	helloTLS   helloKind = iota // a ClientHello Go's parser read
	helloOther                  // not a TLS handshake record: another protocol
	helloNone                   // nothing before the deadline
	helloBad                    // began as TLS but did not parse, or not whole in time
)

// peekSNI reads the client's first TLS record(s) and returns what they
// were, the server name of a ClientHello that parsed, and every byte read,
// which must be forwarded upstream first. Nothing is ever written to the
// client.
func peekSNI(c net.Conn, wait time.Duration) (kind helloKind, sni string, read []byte) {
	rec := &recordingConn{Conn: c}
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	var first [1]byte
	n, err := c.Read(first[:])
	if n == 0 || err != nil {
		return helloNone, "", nil
	}
	rec.buf.Write(first[:n])
	if first[0] != 0x16 { // not a TLS handshake record
		return helloOther, "", rec.buf.Bytes()
	}
	rec.replay = bytes.NewReader(rec.buf.Bytes())
	kind = helloBad
	srv := tls.Server(rec, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		kind, sni = helloTLS, h.ServerName
		return nil, errHelloSeen
	}})
	srv.Handshake()
	return kind, sni, rec.buf.Bytes()
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
