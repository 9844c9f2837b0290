package netns

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestHelperArgsRoundTrip(t *testing.T) {
	in := Config{CapturePort: 1000, DNSPort: 5353, HTTPPort: 8080,
		Forward: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5432"), netip.MustParseAddrPort("[::1]:6379")}, Pool: 3}
	got, err := parseArgs(HelperArgs(in))
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("parseArgs(HelperArgs(%+v)) = %+v, %v", in, got, err)
	}
	def, err := parseArgs(HelperArgs(Config{}))
	if err != nil || def.CapturePort != DefaultCapturePort || def.DNSPort != DefaultDNSPort || def.HTTPPort != DefaultHTTPPort {
		t.Fatalf("defaults: %+v, %v", def, err)
	}
}

func TestParseArgsRejects(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"run", "{}"},
		{HelperArg, "not json"},
		{HelperArg, `{"capture_port":70000}`},
		{HelperArg, `{"capture_port":3128,"http_port":3128}`},
		{HelperArg, `{"capture_port":53}`},
		{HelperArg, `{"forward":["10.0.0.1:5432"]}`},
		{HelperArg, `{"forward":["127.0.0.1:5432","127.0.0.1:5432"]}`},
		{HelperArg, `{"forward":["127.0.0.1:53"]}`},
		{HelperArg, `{"forward":["127.0.0.1:3128"]}`},
		{HelperArg, `{"forward":["127.0.0.1:0"]}`},
		{HelperArg, `{"pool":129}`},
		{HelperArg, `{"pool":-1}`},
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("parseArgs(%q) accepted", args)
		}
	}
}

func TestParseForward(t *testing.T) {
	good := map[string]string{
		"5432":                 "127.0.0.1:5432",
		"127.0.0.1:5432":       "127.0.0.1:5432",
		"127.0.0.2:80":         "127.0.0.2:80",
		"[::1]:6379":           "[::1]:6379",
		"[::ffff:127.0.0.1]:1": "127.0.0.1:1",
	}
	for in, want := range good {
		got, err := ParseForward(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseForward(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                "--net-forward : ",
		"0":               "--net-forward 0: ",
		"99999":           "--net-forward 99999: ",
		"127.0.0.1:99999": "--net-forward 127.0.0.1:99999: port out of range",
		"10.0.0.1:5432":   "--net-forward 10.0.0.1:5432: not a loopback",
		"[2001:db8::1]:1": "--net-forward [2001:db8::1]:1: not a loopback",
		"localhost:5432":  "--net-forward localhost:5432: \"localhost\" is not an IP",
		"127.0.0.1":       "--net-forward 127.0.0.1: ",
		"::1:80":          "--net-forward ::1:80: ",
		"127.0.0.1:-1":    "--net-forward 127.0.0.1:-1: port",
		"[fe80::1%lo]:1":  "--net-forward [fe80::1%lo]:1: ",
	}
	for in, want := range bad {
		_, err := ParseForward(in)
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseForward(%q) error %v; want prefix %q", in, err, want)
		}
	}
}

func TestParsePublish(t *testing.T) {
	good := map[string]Publish{
		"8080":              {netip.MustParseAddrPort("127.0.0.1:8080"), 8080},
		"9000:80":           {netip.MustParseAddrPort("127.0.0.1:9000"), 80},
		"127.0.0.1:9000:80": {netip.MustParseAddrPort("127.0.0.1:9000"), 80},
		"0.0.0.0:9000:80":   {netip.MustParseAddrPort("0.0.0.0:9000"), 80},
		"[::1]:9000:80":     {netip.MustParseAddrPort("[::1]:9000"), 80},
		"65535:1":           {netip.MustParseAddrPort("127.0.0.1:65535"), 1},
	}
	for in, want := range good {
		got, err := ParsePublish(in)
		if err != nil || got != want {
			t.Errorf("ParsePublish(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "99999", "8080:", ":80", "x:80", "80:x", "9000:0", "0:80",
		"localhost:9000:80", "::1:9000:80", "127.0.0.1:99999:80", "1:2:3:4", "+80", "08080a"} {
		_, err := ParsePublish(in)
		if err == nil || !strings.HasPrefix(err.Error(), "--publish "+in+": ") {
			t.Errorf("ParsePublish(%q) error %v; want one naming the value", in, err)
		}
	}
}
