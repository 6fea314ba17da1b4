// Command chatd is grainchat's server: a clustered real-time support chat.
//
//	chatd [flags]                               serve (see chatd -h)
//	chatd migrate [flags]                        apply database migrations and exit
//	chatd reset-store-id [flags]                 after restoring a backup: give the database a new store id
//	chatd check-config [flags]                   validate the configuration and exit
//	chatd cluster status [--url URL,...]         what each node sees and hosts (nodes run with --pprof)
//	chatd token --sub ID --name NAME [--admin]   print a token for development
//	chatd apikey create|list|revoke [flags]      manage the REST API's keys (PostgreSQL)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode is the process's exit status for run's answer: 0 when it
// succeeded or only printed the usage asked for (-h, --help), else 1 after
// the error is written to stderr.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "chatd:", err)
	return 1
}

// run is chatd's whole program; tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "token":
			return runToken(args[1:], getenv, stdout)
		case "migrate":
			return runMigrate(ctx, args[1:], getenv, stdout)
		case "apikey":
			return runAPIKey(ctx, args[1:], getenv, stdout)
		case "cluster":
			if len(args) < 2 || args[1] != "status" {
				return errors.New("usage: chatd cluster status [--url URL,...] [--json]")
			}
			return runClusterStatus(ctx, args[2:], stdout)
		case "check-config":
			return runCheckConfig(ctx, args[1:], getenv, stdout)
		case "reset-store-id":
			return runResetStoreID(ctx, args[1:], getenv, stdout)
		case "serve":
			args = args[1:]
		}
	}
	return runServe(ctx, args, getenv, stdout)
}
