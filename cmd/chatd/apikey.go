package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/pgstore"
	"github.com/grainchat/grainchat/transport/auth"
)

// apikeyUsage is chatd apikey's usage.
const apikeyUsage = `Usage:
  chatd apikey create --name NAME [flags]      make a key and print it (once)
  chatd apikey list [--all] [flags]            list the keys (--all: revoked ones too)
  chatd apikey revoke (--name NAME | --id ID) [flags]

API keys authenticate servers (a bot, a CRM) to the REST API as a staff user of
their own, named as the key: send "Authorization: Bearer gck_…". The database
keeps only each key's SHA-256; the key is printed once, when it is made. Keys
are stored in PostgreSQL: --database-url (else CHAT_DATABASE_URL, else the
database-url of the --config file) is required.

Flags:`

// apikeyFlags are chatd apikey's flags.
type apikeyFlags struct {
	name, config, databaseURL string
	id                        int64
	all, migrate              bool
}

// runAPIKey runs chatd apikey create, list or revoke.
func runAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stdout, apikeyUsage)
		apikeyFlagSet("", &apikeyFlags{}, getenv, stdout).PrintDefaults()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errors.New("apikey: say create, list or revoke")
	}
	verb := args[0]
	switch verb {
	case "create", "list", "revoke":
	default:
		return fmt.Errorf("apikey: unknown command %q (create, list or revoke)", verb)
	}
	var f apikeyFlags
	fs := apikeyFlagSet(verb, &f, getenv, stdout)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("apikey %s: unexpected arguments %q", verb, fs.Args())
	}
	if err := f.resolve(fs, getenv); err != nil {
		return fmt.Errorf("apikey %s: %w", verb, err)
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := pgstore.Open(ctx, logger, f.databaseURL, pgstore.Options{SkipMigrations: !f.migrate})
	if err != nil {
		return fmt.Errorf("apikey %s: %w", verb, err)
	}
	defer store.Close()
	switch verb {
	case "create":
		err = apikeyCreate(ctx, store, f, stdout)
	case "list":
		err = apikeyList(ctx, store, f, stdout)
	default:
		err = apikeyRevoke(ctx, store, f, stdout)
	}
	if err != nil {
		return fmt.Errorf("apikey %s: %w", verb, err)
	}
	return nil
}

// apikeyFlagSet registers the flags of chatd apikey VERB.
func apikeyFlagSet(verb string, f *apikeyFlags, getenv func(string) string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("chatd apikey "+verb, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), apikeyUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.name, "name", "", "create, revoke: the key's name, 1 to 64 letters, digits, -, _ or spaces (its bot's display name)")
	fs.Int64Var(&f.id, "id", 0, "revoke: the key's id (as list prints it)")
	fs.BoolVar(&f.all, "all", false, "list: revoked keys too")
	fs.StringVar(&f.databaseURL, "database-url", "", "PostgreSQL URL (default: CHAT_DATABASE_URL, else the config file's database-url)")
	fs.StringVar(&f.config, "config", getenv(envName("config")), "chatd's YAML configuration file, for its database-url and migrate (default: CHAT_CONFIG)")
	fs.BoolVar(&f.migrate, "migrate", true, "apply pending migrations first (default: CHAT_MIGRATE, else the config file's migrate, else true)")
	return fs
}

// resolve fills the database URL and migrate from the environment and the
// configuration file where no flag set them (file < environment < flag, as
// chatd's own settings), and checks what the verb needs.
func (f *apikeyFlags) resolve(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	file := map[string]string{}
	if f.config != "" {
		var err error
		if file, err = readConfigFile(f.config); err != nil {
			return err
		}
	}
	pick := func(name string) string {
		if v := getenv(envName(name)); v != "" {
			return v
		}
		return file[name]
	}
	if !set["database-url"] {
		f.databaseURL = pick("database-url")
	}
	if v := pick("migrate"); !set["migrate"] && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("migrate: %q is not a boolean", v)
		}
		f.migrate = b
	}
	if f.databaseURL == "" {
		return errors.New("no --database-url (CHAT_DATABASE_URL) given: API keys are kept in PostgreSQL " +
			"(with the in-memory store of development mode, make them with POST /api/v1/api_keys; they last as long as the process)")
	}
	switch verb := fs.Name()[len("chatd apikey "):]; {
	case verb == "create" && f.name == "":
		return errors.New("--name is required")
	case verb == "revoke" && (f.name == "") == (f.id == 0):
		return errors.New("give --name or --id (one of them)")
	}
	return nil
}

// apikeyCreate makes a key and prints it, once.
func apikeyCreate(ctx context.Context, store *pgstore.Store, f apikeyFlags, stdout io.Writer) error {
	key := auth.NewAPIKey()
	k, err := store.CreateAPIKey(ctx, storage.NewAPIKey{Name: f.name, Hash: auth.HashAPIKey(key)})
	if err != nil {
		return apikeyError(err)
	}
	_, err = fmt.Fprintf(stdout, `API key %d %q created: it acts as the staff user %q (external id %s).
Here it is; it is shown this once only (the database keeps its SHA-256), so store it now:

%s

Send it to the REST API as:  Authorization: Bearer %s
Revoke it with:              chatd apikey revoke --id %d
`, k.ID, k.Name, k.Bot.Name, k.Bot.ExternalID, key, key, k.ID)
	return err
}

// apikeyList prints the keys, newest first.
func apikeyList(ctx context.Context, store *pgstore.Store, f apikeyFlags, stdout io.Writer) error {
	keys, err := store.APIKeys(ctx, f.all)
	if err != nil {
		return apikeyError(err)
	}
	if len(keys) == 0 {
		_, err := fmt.Fprintln(stdout, "no API keys")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tBOT\tCREATED\tCREATED BY\tLAST USED\tREVOKED")
	at := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		by := "(command line)"
		if k.CreatedBy != nil {
			by = k.CreatedBy.ExternalID
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Bot.ExternalID, at(&k.CreatedAt), by, at(k.LastUsedAt), at(k.RevokedAt))
	}
	return tw.Flush()
}

// apikeyRevoke revokes a key named by id, or the valid key with a name.
func apikeyRevoke(ctx context.Context, store *pgstore.Store, f apikeyFlags, stdout io.Writer) error {
	id := f.id
	if f.name != "" {
		keys, err := store.APIKeys(ctx, false)
		if err != nil {
			return apikeyError(err)
		}
		for _, k := range keys {
			if strings.EqualFold(k.Name, strings.TrimSpace(f.name)) {
				id = k.ID
			}
		}
		if id == 0 {
			return fmt.Errorf("no valid API key is named %q (chatd apikey list --all shows them all)", f.name)
		}
	}
	k, err := store.RevokeAPIKey(ctx, id)
	if err != nil {
		return apikeyError(err)
	}
	_, err = fmt.Fprintf(stdout, "API key %d %q revoked at %s: requests with it are refused (401) from now on.\n",
		k.ID, k.Name, k.RevokedAt.UTC().Format(time.RFC3339))
	return err
}

// apikeyError says what a store error means to the operator.
func apikeyError(err error) error {
	var se *storage.Error
	switch code := storage.ErrorCode(err); {
	case code == storage.ENOTFOUND:
		return errors.New("no such API key")
	case (code == storage.EINVALID || code == storage.ECONFLICT) && errors.As(err, &se):
		return errors.New(se.Message)
	}
	return err
}
