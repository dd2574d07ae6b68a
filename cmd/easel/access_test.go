package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
)

const accessConfig = `[engine]
admins = ["UADMIN"]
stop_grace = "90s"

[access]
workspaces = ["T0123ABCD", "123456789012345678"]
channels = ["C0123ABCD"]
users = ["U012AB3CD", "UADMIN"]
roles = ["223456789012345678"]
dms = false

[quota]
images_per_user_day = 20
spend_per_workspace_month_usd = 150.5
admins_exempt = false
`

func TestConfigCheckAccessAndQuota(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(accessConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := easel(t, "", nil, "config", "check", "-config", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("config check of [access] and [quota]: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := easel(t, "", nil, "config", "check", "-config", filepath.Join("..", "..", "config.example.toml")); code != 0 {
		t.Errorf("config check of config.example.toml: exit %d\n%s%s", code, out, errOut)
	}

	bad := filepath.Join(dir, "bad.toml")
	doc := "[engine]\nstop_grace = \"2h\"\n[access]\nchannels = [\"\"]\nroles = [\"mods\"]\n[quota]\nimages_per_user_day = -1\nspend_per_workspace_month_usd = -5\n"
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := easel(t, "", nil, "config", "check", "-config", bad)
	if code != 1 {
		t.Errorf("config check of bad values: exit %d, want 1", code)
	}
	for _, want := range []string{
		"bad.toml:2: engine.stop_grace: must be more than 0s and at most 1h0m0s, got 2h0m0s",
		"bad.toml:4: access.channels: entry 1 is empty",
		`bad.toml:5: access.roles: entry 1 must be a role id`,
		"bad.toml:7: quota.images_per_user_day: must be 0 (unlimited) or more, got -1",
		"bad.toml:8: quota.spend_per_workspace_month_usd: must be 0 (unlimited) or more US dollars, got -5",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("config check of bad values says\n%s\nwant a line with %q", errOut, want)
		}
	}
}

func TestEngineConfigWiresAccessAndQuotas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "easel.toml")
	if err := os.WriteFile(path, []byte(accessConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ec := engineConfig(cfg)
	wantAccess := core.Access{
		Workspaces: []string{"T0123ABCD", "123456789012345678"}, Channels: []string{"C0123ABCD"},
		Users: []string{"U012AB3CD", "UADMIN"}, Roles: []string{"223456789012345678"}, DisableDMs: true,
	}
	if !reflect.DeepEqual(ec.Access, wantAccess) {
		t.Errorf("engine access = %+v, want %+v", ec.Access, wantAccess)
	}
	if want := (core.Quotas{ImagesPerUserDay: 20, SpendPerWorkspaceMonthUSD: 150.5}); ec.Quotas != want {
		t.Errorf("engine quotas = %+v, want %+v", ec.Quotas, want)
	}
	def := engineConfig(config.DefaultConfig())
	if def.Access.DisableDMs || def.Quotas != (core.Quotas{AdminsExempt: true}) {
		t.Errorf("default engine access %+v, quotas %+v; want DMs on, no quota, admins exempt", def.Access, def.Quotas)
	}

	// The engine built from the file applies it.
	cfg.Storage.Dir = t.TempDir()
	a, err := openApp(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.abort()
	allowed := core.Message{Platform: "slack", Workspace: "T0123ABCD", Channel: "C0123ABCD", User: core.User{ID: "U012AB3CD"}}
	if err := a.engine.Allowed(allowed); err != nil {
		t.Errorf("a listed user in a listed channel: %v", err)
	}
	elsewhere := allowed
	elsewhere.Channel = "C999"
	if err := a.engine.Allowed(elsewhere); core.KindOf(err) != core.Forbidden {
		t.Errorf("an unlisted channel: %v, want Forbidden", err)
	}
	dm := allowed
	dm.Channel, dm.DM = "D1", true
	if err := a.engine.Allowed(dm); core.KindOf(err) != core.Forbidden {
		t.Errorf("a DM with dms = false: %v, want Forbidden", err)
	}
	dm.User = core.User{ID: "UADMIN"}
	if err := a.engine.Allowed(dm); err != nil {
		t.Errorf("an admin's DM: %v", err)
	}
}
