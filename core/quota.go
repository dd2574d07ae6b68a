package core

// Quotas bound what users and workspaces may spend. Zero means unlimited.
type Quotas struct {
	// ImagesPerUserDay bounds the images one user may make per UTC day.
	ImagesPerUserDay int
	// SpendPerWorkspaceMonthUSD bounds the estimated spend of one Slack
	// workspace or Discord guild per UTC month.
	SpendPerWorkspaceMonthUSD float64
	// AdminsExempt exempts admins from both bounds.
	AdminsExempt bool
}
