package linux

import (
	"os"
	"testing"
)

func TestPrintPlan(t *testing.T) {
	if os.Getenv("PRINT_PLAN") == "" {
		t.Skip("set PRINT_PLAN=1 to print a launch plan")
	}
	s, err := Plan(&Spec{Path: "true", Args: []string{"true"}, Dir: "/", Mounts: []Mount{{Kind: Bind, Source: "/usr", Dest: "/usr"}, {Kind: Tmpfs, Dest: "/tmp"}, {Kind: Bind, Source: "/tmp", Dest: "/tmp"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + s)
}
