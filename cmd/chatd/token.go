package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/grainchat/grainchat/transport/auth"
)

// runToken prints a signed token. The secret is --jwt-secret / CHAT_JWT_SECRET,
// or else the secret a development-mode server generated.
func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chatd token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	sub := fs.String("sub", "", "the user's stable id in the host site (required)")
	name := fs.String("name", "", "display name (default: the sub)")
	admin := fs.Bool("admin", false, "the user is staff")
	ttl := fs.Duration("ttl", 24*time.Hour, "token lifetime")
	secret := fs.String("jwt-secret", getenv(envName("jwt-secret")), "HS256 secret (default: CHAT_JWT_SECRET, else the development secret file)")
	secretFile := fs.String("dev-secret-file", firstNonEmpty(getenv(envName("dev-secret-file")), defaultDevSecretFile(getenv)), "development secret file")
	issuer := fs.String("jwt-issuer", getenv(envName("jwt-issuer")), "iss claim")
	audience := fs.String("jwt-audience", getenv(envName("jwt-audience")), "aud claim")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	key := *secret
	if key == "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return fmt.Errorf("token: no --jwt-secret given and no development secret at %s (start chatd without a secret first): %w", *secretFile, err)
		}
		key = strings.TrimSpace(string(b))
	}
	issuerCfg := auth.Config{Secret: []byte(key), Issuer: *issuer, Audience: *audience}
	iss, err := auth.NewIssuer(issuerCfg)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tok, err := iss.Mint(auth.Identity{Subject: *sub, Name: *name, Admin: *admin}, *ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
