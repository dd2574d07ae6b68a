// Command easel runs Easel: conversational image generation in Slack,
// Discord and the terminal. See README.md for the commands.
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
	// The first SIGINT or SIGTERM starts a graceful stop; once it has,
	// signals take their default action again, so a second one kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// env is the process's surroundings, passed explicitly so commands can be
// tested in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"chat", "hold a refinement session in the terminal", cmdChat},
		{"run", "serve the Slack and Discord bots enabled in a config file", cmdRun},
		{"sessions", "list, show and export stored sessions", cmdSessions},
		{"styles", "list the styles of the config and those set in chat, and each channel's defaults", cmdStyles},
		{"usage", "show images and estimated spend per user and workspace, beside the quotas", cmdUsage},
		{"storage", "copy a bbolt data dir into PostgreSQL and the configured image store", cmdStorage},
		{"config", "check a config file", cmdConfig},
		{"discord", "print the URL that adds the Discord bot to a server", cmdDiscord},
		{"web", "print a signed link to the web gallery", cmdWeb},
		{"version", "print the version", cmdVersion},
	}
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		mainUsage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "easel %s: %s\n", c.name, ue.msg)
			return 2
		default:
			fmt.Fprintf(e.stderr, "easel %s: %s\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "easel: unknown command %q\n\n", args[0])
	mainUsage(e.stderr)
	return 2
}

func mainUsage(w io.Writer) {
	fmt.Fprintln(w, "Easel makes and refines images in chat threads.\n\nUsage: easel <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'easel <command> -help' for a command's flags.")
}

// newFlagSet returns a FlagSet whose errors and help go to e.stderr and whose
// usage starts with synopsis.
func newFlagSet(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: easel %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
