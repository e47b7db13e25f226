-- +goose Up
-- One row per run of a unit on a bench; (device_id, run_id) is the key every write
-- upserts on. seq orders the writes of one run (1 when it starts, 2 when it ends) so a
-- late copy of an earlier write never overwrites a later one. Times are timestamptz.
CREATE TABLE units (
    device_id        TEXT    NOT NULL,
    run_id           TEXT    NOT NULL,
    seq              BIGINT  NOT NULL DEFAULT 0,
    serial_number    TEXT    NOT NULL DEFAULT '',
    iccid            TEXT    NOT NULL DEFAULT '',
    imei             TEXT    NOT NULL DEFAULT '',
    platform         TEXT    NOT NULL DEFAULT '',
    device_os_before TEXT    NOT NULL DEFAULT '',
    device_os_after  TEXT    NOT NULL DEFAULT '',
    modules_before   TEXT    NOT NULL DEFAULT '[]',
    modules_after    TEXT    NOT NULL DEFAULT '[]',
    app              TEXT    NOT NULL DEFAULT '',
    target           TEXT    NOT NULL DEFAULT '',
    protection       TEXT    NOT NULL DEFAULT 'unknown',
    setup_done       TEXT    NOT NULL DEFAULT 'unknown',
    result           TEXT    NOT NULL,
    error            TEXT    NOT NULL DEFAULT '',
    remedy           TEXT    NOT NULL DEFAULT '',
    started_at       TIMESTAMPTZ NOT NULL,
    ended_at         TIMESTAMPTZ,
    duration_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    station          TEXT    NOT NULL DEFAULT '',
    operator         TEXT    NOT NULL DEFAULT '',
    lot              TEXT    NOT NULL DEFAULT '',
    plug             BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, run_id)
);
CREATE INDEX units_lot ON units (lot, station);
CREATE INDEX units_started ON units (started_at);

-- +goose Down
DROP TABLE units;
