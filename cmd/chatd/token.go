package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/grainchat/grainchat/cmd/internal/devsecret"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/auth"
)

// runToken prints a signed token. The secret is --jwt-secret / CHAT_JWT_SECRET,
// or else the secret a development-mode server generated (see
// cmd/internal/devsecret, which cmd/chatbench shares).
func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chatd token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: chatd token --sub ID [--name NAME] [--admin] [--team NAME | --teams A,B] [flags]\n\nPrints a signed token (HS256 JWT) for the user, to present as the cookie chat_token,\nthe query parameter token or Authorization: Bearer.\n\nFlags:")
		fs.PrintDefaults()
	}
	sub := fs.String("sub", "", "the user's stable id in the host site (required)")
	name := fs.String("name", "", "display name (default: the sub)")
	admin := fs.Bool("admin", false, "the user is staff")
	team := fs.String("team", "", "a visitor's team (the team claim)")
	teams := fs.String("teams", "", "the teams a staff member serves, comma-separated (the teams claim; --teams= names none: only the conversations without a team; default: every team)")
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
	id := auth.Identity{Subject: *sub, Name: *name, Admin: *admin, Team: *team}
	if *team != "" && (*admin || !storage.ValidTeam(*team)) {
		return fmt.Errorf("token: --team %q: a visitor's, 1 to %d of a-z, 0-9, '-', '_', '.'", *team, storage.MaxTeamBytes)
	}
	teamsSet := false
	fs.Visit(func(f *flag.Flag) { teamsSet = teamsSet || f.Name == "teams" })
	if teamsSet {
		// --teams= (empty) is the empty list: only the conversations
		// without a team.
		id.Teams = []string{}
		if *teams != "" {
			id.Teams = strings.Split(*teams, ",")
		}
		if !*admin || storage.CheckTeams(id.Teams) != nil {
			return fmt.Errorf("token: --teams %q: staff's (with --admin), at most %d names of 1 to %d of a-z, 0-9, '-', '_', '.'", *teams, storage.MaxTeams, storage.MaxTeamBytes)
		}
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
	tok, err := iss.Mint(id, *ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
