// Package prereq is how tests treat a missing prerequisite (a program the
// suite runs, such as etcd or a browser), the same way everywhere: under
// CI=true the test fails, since CI must run everything; elsewhere it skips,
// and either way the message says what to install. `make deps` installs
// every prerequisite (see the README's Tests section).
package prereq

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run in CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing fails tb under CI=true, else skips it, with what (what needs
// it: "cluster tests with etcd membership need etcd") and the Debian
// package to install.
func Missing(tb testing.TB, what, debianPackage string) {
	tb.Helper()
	msg := what + " on PATH (apt-get install " + debianPackage + ", or make deps for every prerequisite)"
	if CI() {
		tb.Fatalf("%s; CI=true: these tests must run", msg)
	}
	tb.Skipf("%s; skipping (with CI=true this is a failure)", msg)
}

// LookPath returns the path of the first of names found on PATH, or calls
// Missing.
func LookPath(tb testing.TB, what, debianPackage string, names ...string) string {
	tb.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(tb, what, debianPackage)
	return ""
}
