// Package deploy holds what runs Easel on a host: the systemd unit
// easel.service. Its tests check the unit.
package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/config"
)

const unitFile = "easel.service"

// stopMargin is what TimeoutStopSec allows beyond engine.stop_grace: the
// store closing and the shards and slots being freed.
const stopMargin = 15 * time.Second

// directives returns the unit's settings, key by key, in order.
func directives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a setting: %q", unitFile, line)
		}
		out[key] = append(out[key], value)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnitHardening: the unit runs `easel run` confined, and gives running
// turns engine.stop_grace (its default) and the margin to stop.
func TestUnitHardening(t *testing.T) {
	d := directives(t)
	want := map[string]string{
		"ExecStart":               "/usr/local/bin/easel run -config /etc/easel/config.toml",
		"EnvironmentFile":         "/etc/easel/easel.env",
		"Restart":                 "on-failure",
		"DynamicUser":             "yes",
		"StateDirectory":          "easel",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter":        "@system-service",
	}
	for key, value := range want {
		if got := d[key]; len(got) != 1 || got[0] != value {
			t.Errorf("%s = %q, want %q", key, got, value)
		}
	}
	stop, err := time.ParseDuration(strings.Join(d["TimeoutStopSec"], ""))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if grace := time.Duration(config.DefaultConfig().Engine.StopGrace); stop != grace+stopMargin {
		t.Errorf("TimeoutStopSec = %s, want engine.stop_grace (%s) + %s", stop, grace, stopMargin)
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit, with its
// ExecStart pointed at an executable that exists here. Without systemd it
// is skipped: CI need not have it.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed, so the unit is not verified (Debian: apt-get install systemd)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), unitFile)
	text := strings.Replace(string(unit), "ExecStart=/usr/local/bin/easel ", "ExecStart="+self+" ", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, unitFile) {
			t.Errorf("systemd-analyze verify: %s", strings.TrimSpace(line))
		}
	}
}
