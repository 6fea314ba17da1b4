package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/grainchat/grainchat/transport/auth"
	"github.com/grainchat/grainchat/transport/clientip"
)

// runCheckConfig validates the configuration as chatd would start with it —
// the file, environment and flags, every problem at once, then the TLS files,
// proxies, token secret and origins — and exits without serving (0: valid).
// It opens no database and joins no cluster.
func runCheckConfig(_ context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig("chatd check-config", args, getenv, stdout)
	if err != nil {
		return err
	}
	var problems []error
	if _, err := cfg.tlsConfig(); err != nil {
		problems = append(problems, err)
	}
	if _, err := clientip.New(cfg.trustedProxies()); err != nil {
		problems = append(problems, fmt.Errorf("trusted-proxies: %w", err))
	}
	if cfg.JWTSecret != "" {
		if _, err := auth.NewVerifier(auth.Config{Secret: []byte(cfg.JWTSecret), Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}); err != nil {
			problems = append(problems, fmt.Errorf("jwt-secret: %w", err))
		}
	}
	if _, err := auth.NewOriginPolicy(cfg.origins()); err != nil {
		problems = append(problems, fmt.Errorf("allowed-origins: %w", err))
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	store := "in-memory (development: persists nothing)"
	if cfg.DatabaseURL != "" {
		store = "PostgreSQL"
	}
	mode := "production"
	if cfg.JWTSecret == "" {
		mode = "development (no --jwt-secret)"
	}
	_, err = fmt.Fprintf(stdout, "configuration OK: listen %s, store %s, cluster provider %s, %s mode\n", cfg.Addr, store, cfg.ClusterProvider, mode)
	return err
}
