package windows

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

func decodeBlock(t *testing.T, b []uint16) []string {
	t.Helper()
	if len(b) < 2 || b[len(b)-1] != 0 || b[len(b)-2] != 0 {
		t.Fatalf("block %v does not end in two NULs", b)
	}
	s := string(utf16.Decode(b[:len(b)-2]))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

func TestEnvBlock(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
		err  bool
	}{
		{"empty", nil, nil, false},
		{"sorted", []string{"b=2", "A=1", "c=3"}, []string{"A=1", "b=2", "c=3"}, false},
		{"case-insensitive sort", []string{"path=x", "Os=y", "SystemRoot=C:\\Windows"}, []string{"Os=y", "path=x", "SystemRoot=C:\\Windows"}, false},
		{"later wins, case-insensitive", []string{"Path=a", "PATH=b"}, []string{"PATH=b"}, false},
		{"value with =", []string{"K=a=b"}, []string{"K=a=b"}, false},
		{"empty value", []string{"K="}, []string{"K="}, false},
		{"drive variable", []string{"=C:=C:\\w", "A=1"}, []string{"=C:=C:\\w", "A=1"}, false},
		{"non-BMP", []string{"E=😀"}, []string{"E=😀"}, false},
		{"NUL", []string{"A=x\x00y"}, nil, true},
		{"no =", []string{"A"}, nil, true},
		{"empty name", []string{"=x"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EnvBlock(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("EnvBlock(%q) error %v, want error %v", tc.in, err, tc.err)
			}
			if err != nil {
				return
			}
			if got := decodeBlock(t, b); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("EnvBlock(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
