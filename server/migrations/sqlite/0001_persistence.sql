-- What leaves the rooms: saved players, room checkpoints, game events, and
-- the records the database refused. STRICT tables, so a value of the wrong
-- type is refused here as it would be by PostgreSQL (u64 values are stored
-- as signed 64-bit integers: versions and milliseconds fit).

CREATE TABLE player_state (
    game        TEXT    NOT NULL,
    player      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    room        TEXT    NOT NULL,
    saved_at_ms INTEGER NOT NULL,
    state       BLOB    NOT NULL,
    PRIMARY KEY (game, player)
) STRICT;

CREATE TABLE room_checkpoints (
    game        TEXT    NOT NULL,
    room        TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    tick        INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (game, room, epoch, taken_at_ms)
) STRICT;

-- `kind` is 1 to 64 bytes (not characters), as the record says.
CREATE TABLE game_events (
    id      TEXT    NOT NULL PRIMARY KEY,
    game    TEXT    NOT NULL,
    room    TEXT    NOT NULL,
    kind    TEXT    NOT NULL CHECK (length(CAST(kind AS BLOB)) BETWEEN 1 AND 64),
    tick    INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,
    payload TEXT    NOT NULL CHECK (json_valid(payload))
) STRICT;

CREATE INDEX game_events_by_kind ON game_events (game, kind, at_ms);

-- `id` is the record's key(), `record` its encode(): what an operator
-- replays or drops.
CREATE TABLE dead_letters (
    id           TEXT    NOT NULL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    record       BLOB    NOT NULL,
    error        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    failed_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX dead_letters_by_age ON dead_letters (failed_at_ms);
