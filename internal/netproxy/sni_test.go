package netproxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

func TestPeekSNI(t *testing.T) {
	// A real ClientHello.
	client, server := net.Pipe()
	go func() {
		tls.Client(client, &tls.Config{ServerName: "a.example", InsecureSkipVerify: true}).Handshake()
	}()
	kind, sni, read := peekSNI(server, 5*time.Second)
	if kind != helloTLS || sni != "a.example" || len(read) < 5 || read[0] != 0x16 {
		t.Errorf("ClientHello: sni=%q kind=%v read %d bytes", sni, kind, len(read))
	}
	client.Close()
	server.Close()

	// Not TLS: the byte read is handed back, nothing else consumed.
	client, server = net.Pipe()
	go func() { client.Write([]byte("SSH-2.0-x\r\n")); client.Close() }()
	kind, sni, read = peekSNI(server, 5*time.Second)
	rest, _ := io.ReadAll(server)
	if kind != helloOther || sni != "" || !bytes.Equal(append(read, rest...), []byte("SSH-2.0-x\r\n")) {
		t.Errorf("non-TLS: sni=%q kind=%v read=%q rest=%q", sni, kind, read, rest)
	}
	server.Close()

	// A silent client (server-first protocol): nothing read, no error kept.
	client, server = net.Pipe()
	kind, sni, read = peekSNI(server, 50*time.Millisecond)
	if kind != helloNone || len(read) != 0 {
		t.Errorf("silent: sni=%q kind=%v read=%q", sni, kind, read)
	}
	go func() { client.Write([]byte("x")) }()
	b := make([]byte, 1)
	if _, err := server.Read(b); err != nil || b[0] != 'x' {
		t.Errorf("deadline not cleared after peek: %v", err)
	}
	client.Close()
	server.Close()
}
