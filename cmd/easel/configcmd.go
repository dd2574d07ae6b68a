package main

import (
	"context"
	"fmt"

	"github.com/easel-bot/easel/config"
)

func cmdConfig(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintln(e.stderr, "Usage: easel config check -config FILE")
			return nil
		}
		return usageError{"use: easel config check -config FILE"}
	}
	fs := newFlagSet(e, "config check", "config check -config FILE")
	configPath := fs.String("config", "", "TOML config `file` to check")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *configPath == "" && fs.NArg() == 1 {
		*configPath = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *configPath == "" {
		return usageError{"missing -config FILE"}
	}
	cfg, err := config.Load(*configPath, e.getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", *configPath)
	fmt.Fprintf(e.stdout, "default provider: %s\n", describeProvider(cfg))
	for _, name := range cfg.MissingSecrets() {
		fmt.Fprintf(e.stdout, "note: %s is not set; the enabled parts of this config need it\n", name)
	}
	return nil
}
