// Package devsecret finds the token secret of a development-mode chatd, for
// the programs that sign tokens for it (`chatd token`, cmd/chatbench).
//
// A chatd started without --jwt-secret (CHAT_JWT_SECRET) generates a secret
// and writes it to its --dev-secret-file (CHAT_DEV_SECRET_FILE), by default
// DefaultFile. The signing programs take the secret from, in order: their
// --jwt-secret flag, CHAT_JWT_SECRET, the file named by their
// --dev-secret-file flag or CHAT_DEV_SECRET_FILE, DefaultFile.
package devsecret

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables read by Flags' defaults, the same as chatd's.
const (
	EnvSecret = "CHAT_JWT_SECRET"
	EnvFile   = "CHAT_DEV_SECRET_FILE"
)

// MinLength is the shortest secret chatd accepts, in bytes.
const MinLength = 32

// DefaultFile is where a development-mode chatd keeps its generated secret
// unless told otherwise: $XDG_STATE_HOME/grainchat/dev-jwt-secret, else
// $HOME/.local/state/grainchat/dev-jwt-secret, else the same under the
// temporary directory.
func DefaultFile(getenv func(string) string) string {
	dir := getenv("XDG_STATE_HOME")
	if dir == "" {
		if home := getenv("HOME"); home != "" {
			dir = filepath.Join(home, ".local", "state")
		} else {
			dir = os.TempDir()
		}
	}
	return filepath.Join(dir, "grainchat", "dev-jwt-secret")
}

// DefaultSecretFile is the default of a --dev-secret-file flag:
// CHAT_DEV_SECRET_FILE, else DefaultFile.
func DefaultSecretFile(getenv func(string) string) string {
	if f := getenv(EnvFile); f != "" {
		return f
	}
	return DefaultFile(getenv)
}

// Resolve returns secret when it is not empty (a --jwt-secret flag whose
// default is CHAT_JWT_SECRET), else the development secret read from file
// (surrounding white space trimmed). The error says what to do when there is
// neither.
func Resolve(secret, file string) (string, error) {
	if secret != "" {
		return secret, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("no --jwt-secret (%s) given and no development secret at %s: start chatd without a secret first (it writes one there), or pass --jwt-secret / --dev-secret-file: %w", EnvSecret, file, err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < MinLength {
		return "", fmt.Errorf("the development secret at %s is shorter than %d bytes", file, MinLength)
	}
	return s, nil
}
