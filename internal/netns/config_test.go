package netns

import "testing"

func TestHelperArgsRoundTrip(t *testing.T) {
	in := Config{CapturePort: 1000, DNSPort: 5353, HTTPPort: 8080}
	got, err := parseArgs(HelperArgs(in))
	if err != nil || got != in {
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
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("parseArgs(%q) accepted", args)
		}
	}
}
