package slack

import "testing"

func TestIsCancel(t *testing.T) {
	for id, want := range map[string]bool{"cancel_turn": true, "cancel_turn_2": true, "cancel_turn_5": true,
		"cancel_turn_1": false, "cancel_turn_": false, "cancel_turn_x": false, "cancel_turnip": false, "cancel": false, "delete": false} {
		if got := isCancel(id); got != want {
			t.Errorf("isCancel(%q) = %v, want %v", id, got, want)
		}
	}
}
