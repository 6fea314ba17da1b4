package devsecret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultFile(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_STATE_HOME": "/x", "HOME": "/h"}, "/x/grainchat/dev-jwt-secret"},
		{map[string]string{"HOME": "/h"}, "/h/.local/state/grainchat/dev-jwt-secret"},
		{map[string]string{}, filepath.Join(os.TempDir(), "grainchat", "dev-jwt-secret")},
	} {
		if got := DefaultFile(env(tc.env)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.env, got, tc.want)
		}
	}
	if got := DefaultSecretFile(env(map[string]string{"HOME": "/h", EnvFile: "/f"})); got != "/f" {
		t.Errorf("with %s: %s", EnvFile, got)
	}
	if got := DefaultSecretFile(env(map[string]string{"HOME": "/h"})); got != "/h/.local/state/grainchat/dev-jwt-secret" {
		t.Errorf("without %s: %s", EnvFile, got)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	secret := strings.Repeat("s", 40)
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Resolve("given", good); err != nil || s != "given" {
		t.Errorf("a given secret: %q %v", s, err)
	}
	if s, err := Resolve("", good); err != nil || s != secret {
		t.Errorf("from the file: %q %v", s, err)
	}
	if _, err := Resolve("", short); err == nil || !strings.Contains(err.Error(), "shorter than 32") {
		t.Errorf("a short file: %v", err)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := Resolve("", missing); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "start chatd without a secret") {
		t.Errorf("no file: %v", err)
	}
}
