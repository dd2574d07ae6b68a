package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

func TestAccessCheck(t *testing.T) {
	// Messages as adapters fill them in: a platform of workspaces whose
	// direct messages belong to one, and a platform of servers whose
	// members have roles and whose direct messages belong to none.
	team := core.Message{Platform: "teams", Workspace: "T1", Channel: "C1", User: core.User{ID: "U1"}}
	teamDM := core.Message{Platform: "teams", Workspace: "T1", Channel: "D1", User: core.User{ID: "U1"}, DM: true}
	guild := core.Message{Platform: "guilds", Workspace: "100", Channel: "200", User: core.User{ID: "300"}, Roles: []string{"400", "401"},
		RolesApply: true, WorkspaceTerm: "server"}
	guildDM := core.Message{Platform: "guilds", Channel: "900", User: core.User{ID: "300"}, DM: true, RolesApply: true, WorkspaceTerm: "server"}
	admin := func(m core.Message) core.Message { m.User.Admin = true; return m }

	const (
		dmsOff    = "doesn't take direct messages"
		workspace = "isn't enabled in this workspace"
		server    = "isn't enabled in this server"
		dmNoGuild = "not in direct messages"
		channel   = "isn't enabled in this channel"
		roles     = "members with certain roles here"
		dmNoRoles = "which a direct message can't show"
		user      = "you don't have access"
	)
	tests := []struct {
		name   string
		access core.Access
		msg    core.Message
		want   string // a phrase of the refusal; "" when allowed
	}{
		{"no lists allow everyone", core.Access{}, team, ""},
		{"no lists allow DMs", core.Access{}, guildDM, ""},

		{"workspace listed", core.Access{Workspaces: []string{"T0", "T1"}}, team, ""},
		{"workspace not listed", core.Access{Workspaces: []string{"T0"}}, team, workspace},
		{"server not listed", core.Access{Workspaces: []string{"T1"}}, guild, server},
		{"a DM in a listed workspace", core.Access{Workspaces: []string{"T1"}}, teamDM, ""},
		{"a DM outside any server", core.Access{Workspaces: []string{"100"}}, guildDM, dmNoGuild},

		{"channel listed", core.Access{Channels: []string{"C1"}}, team, ""},
		{"channel not listed", core.Access{Channels: []string{"C2"}}, team, channel},
		{"server channel not listed", core.Access{Channels: []string{"201"}}, guild, channel},
		{"a DM is no channel", core.Access{Channels: []string{"C2"}}, teamDM, ""},
		{"no channel at all", core.Access{Channels: []string{"C2"}}, core.Message{Platform: "team", User: core.User{ID: "U1"}}, channel},

		{"user listed", core.Access{Users: []string{"U0", "U1"}}, team, ""},
		{"user not listed", core.Access{Users: []string{"U0"}}, team, user},
		{"user not listed in a DM", core.Access{Users: []string{"U0"}}, teamDM, user},

		{"one role listed", core.Access{Roles: []string{"401", "999"}}, guild, ""},
		{"no role listed", core.Access{Roles: []string{"999"}}, guild, roles},
		{"member without roles", core.Access{Roles: []string{"999"}}, core.Message{Platform: "guilds", Workspace: "100", Channel: "200", User: core.User{ID: "301"}, RolesApply: true}, roles},
		{"a DM shows no roles", core.Access{Roles: []string{"400"}}, guildDM, dmNoRoles},
		{"roles do not apply without roles", core.Access{Roles: []string{"400"}}, team, ""},

		{"DMs off", core.Access{DisableDMs: true}, teamDM, dmsOff},
		{"DMs off, outside any server", core.Access{DisableDMs: true}, guildDM, dmsOff},
		{"DMs off leaves channels alone", core.Access{DisableDMs: true}, guild, ""},

		{"every list passed", core.Access{Workspaces: []string{"100"}, Channels: []string{"200"}, Users: []string{"300"}, Roles: []string{"400"}}, guild, ""},
		{"place before person", core.Access{Channels: []string{"C2"}, Users: []string{"U0"}}, team, channel},
		{"workspace before channel", core.Access{Workspaces: []string{"T0"}, Channels: []string{"C2"}}, team, workspace},
		{"DMs off before the lists", core.Access{DisableDMs: true, Users: []string{"U0"}}, teamDM, dmsOff},

		{"admin passes workspaces", core.Access{Workspaces: []string{"T0"}}, admin(team), ""},
		{"admin passes channels", core.Access{Channels: []string{"C2"}}, admin(team), ""},
		{"admin passes users", core.Access{Users: []string{"U0"}}, admin(team), ""},
		{"admin passes roles", core.Access{Roles: []string{"999"}}, admin(guild), ""},
		{"admin passes DMs off", core.Access{DisableDMs: true, Workspaces: []string{"100"}, Roles: []string{"400"}}, admin(guildDM), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.access.Check(tt.msg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want allowed", err)
				}
				return
			}
			var e *core.Error
			if !errors.As(err, &e) || e.Kind != core.Forbidden {
				t.Fatalf("Check = %#v, want a Forbidden *core.Error", err)
			}
			if !strings.Contains(e.Message, tt.want) {
				t.Errorf("Check says %q, want it to say %q", e.Message, tt.want)
			}
			// The note names no id from the lists or the message.
			for _, id := range []string{"T0", "T1", "C1", "C2", "D1", "U0", "U1", "100", "200", "201", "300", "400", "401", "999"} {
				if strings.Contains(e.Message, id) {
					t.Errorf("Check's note %q reveals %s", e.Message, id)
				}
			}
			if core.UserMessage(err, "ref") != e.Message {
				t.Errorf("the note is not shown to the user as is")
			}
		})
	}
}

func TestEngineChecksAccessFirst(t *testing.T) {
	h := newHarness(t, core.EngineConfig{Admins: []string{"UADMIN"}, Access: core.Access{Channels: []string{"C1"}}})
	ctx := context.Background()
	th := coretest.NewThread()
	m := core.Message{Platform: "team", Workspace: "T1", Channel: "C2", Thread: "C2/1.0", User: core.User{ID: "U1"}}

	// Refused before anything else: even a prompt that would not parse, or
	// a button on a session that does not exist, gets the access note.
	for _, text := range []string{"a fox", "a fox --ar banana", ""} {
		m.Text = text
		if err := h.engine.Allowed(m); core.KindOf(err) != core.Forbidden {
			t.Errorf("Allowed(%q) = %v, want Forbidden", text, err)
		}
		if _, err := h.engine.Handle(ctx, th, m); core.KindOf(err) != core.Forbidden {
			t.Errorf("Handle(%q) = %v, want Forbidden", text, err)
		}
	}
	press := m
	press.Action, press.SessionID, press.Version = core.ActionRegenerate, "nosuchsession", 1
	if _, err := h.engine.Handle(ctx, th, press); core.KindOf(err) != core.Forbidden {
		t.Errorf("Handle(button) = %v, want Forbidden", err)
	}
	if sessions, err := h.db.Sessions(ctx); err != nil || len(sessions) != 0 {
		t.Errorf("refused messages left %d sessions (%v)", len(sessions), err)
	}

	// The engine's admins pass, as do users the platform says are admins.
	for _, u := range []core.User{{ID: "UADMIN"}, {ID: "U2", Admin: true}} {
		m.User, m.Text = u, "a fox"
		if err := h.engine.Allowed(m); err != nil {
			t.Errorf("Allowed(%+v) = %v, want nil", u, err)
		}
	}
	m.User = core.User{ID: "UADMIN"}
	h.send(th, m)
	m.User, m.Channel, m.Thread = core.User{ID: "U1"}, "C1", "C1/2.0"
	h.send(th, m)
	th.WaitTurns(t, 2)
	if n := h.gen.Calls.Load(); n != 2 {
		t.Errorf("%d provider calls, want 2 (the allowed requests)", n)
	}
}
