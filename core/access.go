package core

import "slices"

// Access says who may use Easel. An empty list allows everyone; a non-empty
// one allows only its members. Admins pass every list.
type Access struct {
	// Workspaces are the workspace ids allowed (see Message.Workspace).
	Workspaces []string
	// Channels are the channel ids allowed (adapters give a thread's parent
	// channel).
	Channels []string
	// Users are the user ids allowed.
	Users []string
	// Roles are the role ids allowed, on platforms whose members have
	// roles (Message.RolesApply); a member needs one of them.
	Roles []string
	// DisableDMs refuses direct messages to the bot.
	DisableDMs bool
}

// Check reports whether msg may be handled: nil, or a Forbidden *Error whose
// message tells the sender, politely, why not and whom to ask, without
// naming what the lists hold. Admins (msg.User.Admin) always pass. A request
// must pass every non-empty list, checked where it was sent first, then who
// sent it:
//
//   - a direct message (msg.DM) is refused when DisableDMs is set;
//   - Workspaces must hold msg.Workspace; a message from no workspace (a
//     direct message outside any) fails a non-empty list;
//   - Channels must hold msg.Channel, except in direct messages, which only
//     DisableDMs governs;
//   - where roles apply (msg.RolesApply), msg.Roles must hold one of Roles;
//     a sender who shows no roles fails a non-empty list. Where they do not
//     apply, Roles is ignored;
//   - Users must hold msg.User.ID.
func (a Access) Check(msg Message) error {
	_, err := a.check(msg)
	return err
}

// check is Check, also naming the rule that refused msg: one of the
// Refused* reasons of Metrics.AccessRefused.
func (a Access) check(msg Message) (reason string, err error) {
	if msg.User.Admin {
		return "", nil
	}
	if msg.DM && a.DisableDMs {
		return RefusedDM, Errorf(Forbidden, "Easel doesn't take direct messages here; please use it in a channel instead")
	}
	if len(a.Workspaces) > 0 && !slices.Contains(a.Workspaces, msg.Workspace) {
		if msg.Workspace == "" {
			return RefusedWorkspace, Errorf(Forbidden, "Easel only works in the servers it's enabled in, not in direct messages; please use it in a channel there")
		}
		return RefusedWorkspace, Errorf(Forbidden, "Easel isn't enabled in this %s; ask an Easel admin to enable it", msg.workspaceTerm())
	}
	if len(a.Channels) > 0 && !msg.DM && !slices.Contains(a.Channels, msg.Channel) {
		return RefusedChannel, Errorf(Forbidden, "Easel isn't enabled in this channel; ask an Easel admin to add it, or use Easel in a channel where it's enabled")
	}
	if len(a.Roles) > 0 && msg.RolesApply && !slices.ContainsFunc(msg.Roles, func(r string) bool { return slices.Contains(a.Roles, r) }) {
		if msg.Workspace == "" {
			return RefusedRole, Errorf(Forbidden, "Easel is open to members with certain roles, which a direct message can't show; please use it in a channel of the server")
		}
		return RefusedRole, Errorf(Forbidden, "Easel is only open to members with certain roles here; ask a server admin if you should have one")
	}
	if len(a.Users) > 0 && !slices.Contains(a.Users, msg.User.ID) {
		return RefusedUser, Errorf(Forbidden, "you don't have access to Easel yet; ask an Easel admin to add you")
	}
	return "", nil
}

// workspaceTerm is what msg's platform calls a workspace.
func (msg Message) workspaceTerm() string { return either(msg.WorkspaceTerm, "workspace") }
