-- What leaves the rooms: saved players, room checkpoints, game events, and
-- the records the database refused. u64 values are stored as BIGINT:
-- versions and milliseconds fit.

CREATE TABLE player_state (
    game        TEXT   NOT NULL,
    player      TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    room        TEXT   NOT NULL,
    saved_at_ms BIGINT NOT NULL,
    state       BYTEA  NOT NULL,
    PRIMARY KEY (game, player)
);

CREATE TABLE room_checkpoints (
    game        TEXT   NOT NULL,
    room        TEXT   NOT NULL,
    epoch       BIGINT NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    tick        BIGINT NOT NULL,
    data        BYTEA  NOT NULL,
    PRIMARY KEY (game, room, epoch, taken_at_ms)
);

-- `kind` is 1 to 64 bytes (not characters), as the record says.
CREATE TABLE game_events (
    id      TEXT   NOT NULL PRIMARY KEY,
    game    TEXT   NOT NULL,
    room    TEXT   NOT NULL,
    kind    TEXT   NOT NULL CHECK (octet_length(kind) BETWEEN 1 AND 64),
    tick    BIGINT NOT NULL,
    at_ms   BIGINT NOT NULL,
    payload JSONB  NOT NULL
);

CREATE INDEX game_events_by_kind ON game_events (game, kind, at_ms);

-- `id` is the record's key(), `record` its encode(): what an operator
-- replays or drops.
CREATE TABLE dead_letters (
    id           TEXT    NOT NULL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    record       BYTEA   NOT NULL,
    error        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    failed_at_ms BIGINT  NOT NULL
);

CREATE INDEX dead_letters_by_age ON dead_letters (failed_at_ms);
