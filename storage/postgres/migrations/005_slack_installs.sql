-- The Slack installations made through OAuth: one per workspace, or one
-- per Enterprise Grid organization for an organization-wide install. key
-- is "team:T…" or "enterprise:E…". token is the bot token sealed with
-- AES-256-GCM by the Slack adapter (the installation's key is its
-- additional data), never the token itself.
CREATE TABLE slack_installs (
    key                text PRIMARY KEY,
    team_id            text NOT NULL,
    enterprise_id      text NOT NULL,
    enterprise_install boolean NOT NULL,
    bot_user_id        text NOT NULL,
    token              bytea NOT NULL,
    scopes             text NOT NULL,
    installer          text NOT NULL,
    installed_at       timestamptz NOT NULL
);
