-- The styles and channel defaults admins set in chat, per platform and
-- workspace. body is the JSON the engine stores (core.Style,
-- core.ChannelDefaults).
CREATE TABLE styles (
    platform  text NOT NULL,
    workspace text NOT NULL,
    name      text NOT NULL,
    body      jsonb NOT NULL,
    PRIMARY KEY (platform, workspace, name)
);

CREATE TABLE channel_defaults (
    platform  text NOT NULL,
    workspace text NOT NULL,
    channel   text NOT NULL,
    body      jsonb NOT NULL,
    PRIMARY KEY (platform, workspace, channel)
);
