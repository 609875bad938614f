-- Several replicas on one database: who is alive, who polls which
-- partition of the instances, who runs each periodic job. Every lease is
-- compared with the database's clock (now()), never a replica's.

-- One row per replica that ever heartbeat; alive while `last_seen` is
-- within the lease length.
CREATE TABLE replicas (
    id         TEXT COLLATE "C" PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL
);

-- The 256 poll partitions (an instance's partition is a fixed hash of its
-- id). `epoch` goes up by one at every change of owner: a poll page is
-- written only while its partition still has the owner and epoch the poll
-- started under, with the lease unexpired (fencing).
CREATE TABLE partitions (
    partition   INTEGER PRIMARY KEY CHECK (partition >= 0 AND partition < 256),
    owner       TEXT COLLATE "C",
    epoch       BIGINT NOT NULL DEFAULT 0,
    lease_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
INSERT INTO partitions (partition) SELECT generate_series(0, 255);

-- Periodic jobs that one replica at a time runs (`maintenance`: retention
-- pruning and the outbox depth gauge).
CREATE TABLE singletons (
    name        TEXT COLLATE "C" PRIMARY KEY,
    owner       TEXT COLLATE "C" NOT NULL,
    epoch       BIGINT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);
