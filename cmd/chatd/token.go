package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/devsecret"
	"github.com/grainchat/grainchat/transport/auth"
)

// runToken prints a signed token. The secret is --jwt-secret / CHAT_JWT_SECRET,
// or else the secret a development-mode server generated (see
// cmd/internal/devsecret, which cmd/chatbench shares).
func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chatd token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: chatd token --sub ID [--name NAME] [--admin] [flags]\n\nPrints a signed token (HS256 JWT) for the user, to present as the cookie chat_token,\nthe query parameter token or Authorization: Bearer.\n\nFlags:")
		fs.PrintDefaults()
	}
	sub := fs.String("sub", "", "the user's stable id in the host site (required)")
	name := fs.String("name", "", "display name (default: the sub)")
	admin := fs.Bool("admin", false, "the user is staff")
	ttl := fs.Duration("ttl", 24*time.Hour, "token lifetime")
	secret := fs.String("jwt-secret", getenv(devsecret.EnvSecret), "HS256 secret (default: CHAT_JWT_SECRET, else the development secret file)")
	secretFile := fs.String("dev-secret-file", devsecret.DefaultSecretFile(getenv), "development secret file (default: CHAT_DEV_SECRET_FILE, else this)")
	issuer := fs.String("jwt-issuer", getenv(envName("jwt-issuer")), "iss claim")
	audience := fs.String("jwt-audience", getenv(envName("jwt-audience")), "aud claim")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected arguments %q", fs.Args())
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	key, err := devsecret.Resolve(*secret, *secretFile)
	if err != nil {
		return fmt.Errorf("token: %w", err)
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
