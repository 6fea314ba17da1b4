package prereq

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf, and stops the
// goroutine as testing.T does.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed = fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recorder) Skipf(f string, a ...any) {
	r.skipped = fmt.Sprintf(f, a...)
	runtime.Goexit()
}

func call(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r
}

func TestMissing(t *testing.T) {
	t.Setenv("CI", "")
	r := call(func(tb testing.TB) { Missing(tb, "the etcd tests need etcd", "etcd-server") })
	if r.failed != "" || !strings.Contains(r.skipped, "apt-get install etcd-server") || !strings.Contains(r.skipped, "skipping") {
		t.Errorf("locally: failed %q, skipped %q", r.failed, r.skipped)
	}
	t.Setenv("CI", "true")
	r = call(func(tb testing.TB) { Missing(tb, "the etcd tests need etcd", "etcd-server") })
	if r.skipped != "" || !strings.Contains(r.failed, "apt-get install etcd-server") || !strings.Contains(r.failed, "CI=true") {
		t.Errorf("in CI: failed %q, skipped %q", r.failed, r.skipped)
	}
}

func TestLookPath(t *testing.T) {
	t.Setenv("CI", "")
	var got string
	r := call(func(tb testing.TB) { got = LookPath(tb, "x", "y", "no-such-program-grainchat", "go") })
	if r.skipped != "" || r.failed != "" || !strings.HasSuffix(got, "/go") {
		t.Errorf("go: %q (failed %q, skipped %q)", got, r.failed, r.skipped)
	}
	r = call(func(tb testing.TB) { LookPath(tb, "x needs z", "z-pkg", "no-such-program-grainchat") })
	if !strings.Contains(r.skipped, "apt-get install z-pkg") {
		t.Errorf("missing: skipped %q", r.skipped)
	}
}
