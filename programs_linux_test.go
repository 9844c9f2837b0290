package airlock_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-sandbox/airlock"
)

// Real programs still work under the default policy and seccomp preset.
func TestRealPrograms(t *testing.T) {
	src := t.TempDir()
	os.Chmod(src, 0o755)
	os.WriteFile(filepath.Join(src, "hello.c"), []byte("#include <stdio.h>\nint main(void){puts(\"hello from c\");return 0;}\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\nimport (\"fmt\";\"os\";\"sync\")\nfunc main(){var wg sync.WaitGroup\nfor i:=0;i<8;i++{wg.Add(1);go func(){defer wg.Done()}()}\nwg.Wait()\nh,_:=os.Hostname()\nfmt.Println(\"hello from go on\", h)}\n"), 0o644)
	gobin := filepath.Join(src, "hello-go")
	build := exec.Command("go", "build", "-o", gobin, filepath.Join(src, "main.go"))
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOCACHE="+filepath.Join(t.TempDir(), "cache"), "GOPATH="+t.TempDir())
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the Go program outside: %v\n%s", err, out)
	}
	os.Chmod(gobin, 0o755)
	p := airlock.DefaultPolicy()
	p.Mounts = append(p.Mounts, airlock.ReadOnly(src, "/src"))
	p.Workdir = "/src"
	cases := map[string]struct{ script, want string }{
		"pipeline": {"seq 1 1000 | sort -rn | head -3 | tr '\\n' ' '", "1000 999 998"},
		"python":   {"python3 -c 'import json, os, threading, subprocess; print(json.dumps({\"ok\": subprocess.run([\"true\"]).returncode}))'", `{"ok": 0}`},
		"go":       {"/src/hello-go", "hello from go on airlock"},
		"gcc":      {"gcc -O1 -o /tmp/hello /src/hello.c && /tmp/hello", "hello from c"},
		"node":     {"node -e 'console.log([1,2,3].map(x => x * 2).join(\",\"))'", "2,4,6"},
		"java":     {"cd /tmp && printf 'class H { public static void main(String[] a) { System.out.println(\"hello from java\"); } }' > H.java && javac H.java && java -Xmx64m H", "hello from java"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tool := strings.Fields(c.script)[0]
			if name == "java" {
				tool = "javac"
			}
			if strings.HasPrefix(tool, "/") {
				tool = "sh"
			}
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s is not installed on this host", tool)
			}
			out, res, err := run(t, p, c.script)
			if err != nil || !strings.Contains(out, c.want) {
				t.Fatalf("err %v, status %s, output:\n%s\ndenials: %v", err, res.Status, out, res.Denials)
			}
		})
	}
}
