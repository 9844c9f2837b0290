package pathmap

import (
	"reflect"
	"testing"
)

func TestPathmap(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		want   bool
	}{{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/a/b", "/a/", true}, {"/x", "/", true}} {
		if got := Within(c.p, c.dir); got != c.want {
			t.Errorf("Within(%q, %q) = %v", c.p, c.dir, got)
		}
	}
	if v, ok := Rebase("/tmp/x/y", "/tmp", "/var/run/t1"); !ok || v != "/var/run/t1/x/y" {
		t.Errorf("Rebase: %q %v", v, ok)
	}
	if v, ok := Rebase("/tmpx", "/tmp", "/r"); ok || v != "/tmpx" {
		t.Errorf("Rebase outside: %q %v", v, ok)
	}
	if got := SetEnv([]string{"A=1", "B=2"}, "B", "3"); !reflect.DeepEqual(got, []string{"A=1", "B=3"}) {
		t.Errorf("SetEnv replace: %v", got)
	}
	if got := SetEnv([]string{"A=1"}, "C", "4"); !reflect.DeepEqual(got, []string{"A=1", "C=4"}) {
		t.Errorf("SetEnv add: %v", got)
	}
}
