package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"

	"github.com/easel-bot/easel/bots/console"
	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
)

func cmdChat(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "chat", "chat [flags] < prompts.txt")
	configPath := fs.String("config", "", "TOML config `file` (default: the embedded defaults)")
	data := fs.String("data", "", "data `dir` for the database and images (default: storage.dir, ./easel-data)")
	provider := fs.String("provider", "", "image provider: openai, openai-responses or preview (default: openai when OPENAI_API_KEY is set, else preview)")
	session := fs.String("session", "", "continue the console session with this `id`")
	verbose := fs.Bool("v", false, "log at debug level to standard error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q: chat reads prompts from standard input", fs.Arg(0))}
	}
	cfg, err := config.Load(*configPath, e.getenv)
	if err != nil {
		return err
	}
	applyOverrides(&cfg, *data, *provider)
	if err := cfg.Validate(); err != nil {
		return err
	}
	floor := slog.LevelWarn
	if *verbose {
		floor = slog.LevelDebug
		cfg.Log.Level = "debug"
	}
	log := newLogger(e.stderr, cfg.Log, floor)

	a, err := openApp(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	thread := ""
	if *session != "" {
		sess, err := a.db.Session(ctx, *session)
		if err != nil {
			a.abort()
			return err
		}
		if sess.Platform != console.Platform {
			a.abort()
			return fmt.Errorf("session %s belongs to %s; only console sessions can be continued here", sess.ID, sess.Platform)
		}
		thread = sess.Thread
	}
	con := console.New(a.engine, e.stdout, console.Options{
		User: localUser(), Thread: thread, ImagePath: a.images.Locate, Log: log,
		Wait:        !isTerminal(e.stdin), // scripted input: one result after another
		Attachments: cfg.Attach.Limits(),
	})
	fmt.Fprintf(e.stdout, "easel chat · provider %s · data %s · /help for commands\n", describeProvider(cfg), a.db.Location())
	if _, err := a.engine.Resume(ctx, func(s *core.Session) (core.Thread, bool) {
		return con.ThreadFor(), s.Thread == con.Thread()
	}); err != nil {
		a.abort()
		return err
	}

	runErr := con.Run(ctx, e.stdin)
	// At the end of input, wait for the queued images until a signal comes;
	// on Ctrl-C or SIGTERM, stop now and leave unfinished turns queued for
	// "easel chat --session".
	if err := a.close(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return runErr
}

// applyOverrides applies command-line overrides to cfg.
func applyOverrides(cfg *config.Config, dataDir, provider string) {
	if dataDir != "" {
		cfg.Storage.Dir = dataDir
	}
	if provider != "" {
		cfg.Provider.Default = provider
	}
}

func describeProvider(cfg config.Config) string {
	name := cfg.ProviderName()
	switch name {
	case "preview":
		if cfg.Secrets.OpenAIKey == "" {
			return "preview (offline renderer; set OPENAI_API_KEY for real images)"
		}
		return "preview (offline renderer)"
	case "openai":
		return "openai " + cfg.OpenAI.Model
	case "openai-responses":
		return "openai-responses " + cfg.OpenAI.ResponsesModel + " with " + cfg.OpenAI.Model
	}
	return name
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// localUser is the person at the terminal. They run Easel, so they are its
// admin: access lists and quotas, which are about chat platforms, do not
// hold them back.
func localUser() core.User {
	if u, err := user.Current(); err == nil {
		return core.User{ID: u.Username, Name: u.Username, Admin: true}
	}
	return core.User{ID: "local", Name: "you", Admin: true}
}
