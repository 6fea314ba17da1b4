package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Asking for help is not an error: the real binary prints the usage on
// stdout and exits 0 (it used to exit 1 with "flag: help requested"); a bad
// flag still exits 1 and says why.
func TestHelpExitsZero(t *testing.T) {
	bin := chatdBinary(t)
	for _, tc := range []struct {
		args []string
		want []string // in the usage text
	}{
		{[]string{"--help"}, []string{"-addr", "-jwt-secret", "-database-url"}},
		{[]string{"-h"}, []string{"-addr"}},
		{[]string{"serve", "--help"}, []string{"-addr"}},
		{[]string{"token", "--help"}, []string{"Usage: chatd token", "-sub", "-admin", "-dev-secret-file"}},
		{[]string{"token", "-h"}, []string{"Usage: chatd token"}},
		{[]string{"migrate", "--help"}, []string{"-database-url"}},
		{[]string{"apikey", "--help"}, []string{"chatd apikey create", "-name", "-database-url"}},
		{[]string{"apikey", "create", "--help"}, []string{"chatd apikey revoke", "-id", "-all"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = []string{"HOME=" + t.TempDir()}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("chatd %v: %v (want exit status 0)\nstdout:\n%s\nstderr:\n%s", tc.args, err, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("chatd %v: usage lacks %q:\n%s", tc.args, w, stdout.String())
				}
			}
			if stderr.Len() != 0 {
				t.Errorf("chatd %v wrote to stderr: %s", tc.args, stderr.String())
			}
		})
	}
	t.Run("bad flag", func(t *testing.T) {
		cmd := exec.Command(bin, "token", "--no-such-flag")
		cmd.Env = []string{"HOME=" + t.TempDir()}
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("chatd token --no-such-flag: %v, want exit status 1", err)
		}
		if !strings.Contains(stderr.String(), "no-such-flag") {
			t.Errorf("stderr does not name the flag: %q", stderr.String())
		}
	})
}

func TestExitCode(t *testing.T) {
	var stderr bytes.Buffer
	if c := exitCode(nil, &stderr); c != 0 {
		t.Errorf("nil: %d", c)
	}
	if c := exitCode(fmt.Errorf("token: %w", flag.ErrHelp), &stderr); c != 0 || stderr.Len() != 0 {
		t.Errorf("help: %d, stderr %q", c, stderr.String())
	}
	if c := exitCode(errors.New("boom"), &stderr); c != 1 || stderr.String() != "chatd: boom\n" {
		t.Errorf("an error: %d, stderr %q", c, stderr.String())
	}
}
