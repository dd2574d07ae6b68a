package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/easel-bot/easel/bots/discord"
)

func cmdDiscord(_ context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "invite-url" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintln(e.stderr, "Usage: easel discord invite-url APPLICATION_ID")
			return nil
		}
		return usageError{"use: easel discord invite-url APPLICATION_ID"}
	}
	fs := newFlagSet(e, "discord invite-url", "discord invite-url APPLICATION_ID")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"give the application id from the Discord developer portal (General Information → Application ID)"}
	}
	id := fs.Arg(0)
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return usageError{fmt.Sprintf("%q is not an application id: it is a number such as 123456789012345678", id)}
	}
	fmt.Fprintln(e.stdout, discord.InviteURL(id))
	return nil
}
