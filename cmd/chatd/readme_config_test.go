package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README's configuration tables are the flags: every flag chatd has is
// there, with its environment variable and its default as chatd defines them
// (one source of truth: the code; the README is checked against it).
func TestREADMEConfigurationMatchesFlags(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cfg config
	fs := flag.NewFlagSet("chatd", flag.ContinueOnError)
	cfg.register(fs, func(string) string { return "" })

	code := regexp.MustCompile("`([^`]*)`")
	cells := func(cell string) []string {
		var out []string
		for _, m := range code.FindAllStringSubmatch(cell, -1) {
			out = append(out, m[1])
		}
		return out
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cols := strings.Split(line, "|")
		if len(cols) < 5 {
			t.Errorf("README row with fewer than 4 columns: %s", line)
			continue
		}
		flags, envs, defaults := cells(cols[1]), cells(cols[2]), cells(cols[3])
		for i, name := range flags {
			name = strings.TrimPrefix(name, "--")
			documented[name] = true
			f := fs.Lookup(name)
			if f == nil {
				t.Errorf("README documents --%s, which chatd does not have", name)
				continue
			}
			if i >= len(envs) || envs[i] != envName(name) {
				t.Errorf("README: --%s's environment variable is %v, want %s", name, envs, envName(name))
			}
			want := f.DefValue
			got := ""
			if i < len(defaults) {
				got = defaults[i]
			}
			if !sameDefault(got, want) {
				t.Errorf("README: --%s defaults to %q, chatd to %q", name, got, want)
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			t.Errorf("--%s is not in the README's configuration tables", f.Name)
		}
	})
}

// sameDefault compares a README default with a flag's: equal text, equal
// durations (60s and 1m0s), or both empty (the README says nothing, or a path
// the code computes, like $XDG_STATE_HOME/…).
func sameDefault(readme, flagValue string) bool {
	if readme == flagValue || (readme == "" && flagValue == "") || strings.HasPrefix(readme, "$") {
		return true
	}
	a, errA := time.ParseDuration(readme)
	b, errB := time.ParseDuration(flagValue)
	return errA == nil && errB == nil && a == b
}
