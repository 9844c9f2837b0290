package openbsd

import (
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	MaybeRunLauncher()
	os.Exit(m.Run())
}

// TestLauncherPlumbing re-executes the test binary as the launcher: the
// plan travels on PlanFD and a failure comes back on ErrFD with status 125.
// Off OpenBSD, applying the plan fails by design after the plan is read.
func TestLauncherPlumbing(t *testing.T) {
	if runtime.GOOS == "openbsd" {
		t.Skip("on OpenBSD the launcher would really exec; see docs/openbsd.md checklist")
	}
	for _, tc := range []struct {
		plan string
		want string
	}{
		{`{"Path":"/bin/true","Args":["true"],"ExecPromises":"stdio"}`, "only on OpenBSD"},
		{`{"Path":""}`, "no program"},
		{`not json`, "reading plan"},
	} {
		pr, pw, _ := os.Pipe()
		er, ew, _ := os.Pipe()
		cmd := exec.Command(os.Args[0], LauncherArg)
		cmd.ExtraFiles = []*os.File{pr, ew}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pr.Close()
		ew.Close()
		io.WriteString(pw, tc.plan)
		pw.Close()
		msg, _ := io.ReadAll(er)
		er.Close()
		cmd.Wait()
		if !strings.Contains(string(msg), tc.want) || cmd.ProcessState.ExitCode() != 125 {
			t.Errorf("plan %s: message %q exit %d, want %q and 125", tc.plan, msg, cmd.ProcessState.ExitCode(), tc.want)
		}
	}
}
