package core

// Access says who may use Easel. An empty list allows everyone; a non-empty
// one allows only its members. Admins pass every list.
type Access struct {
	// Workspaces are the Slack team ids and Discord guild ids allowed.
	Workspaces []string
	// Channels are the channel ids allowed (a Discord thread counts as its
	// parent channel).
	Channels []string
	// Users are the user ids allowed.
	Users []string
	// Roles are the Discord role ids allowed; a member needs one of them.
	Roles []string
	// DisableDMs refuses direct messages to the bot.
	DisableDMs bool
}
