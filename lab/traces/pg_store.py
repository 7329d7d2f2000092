"""The trace store on a PostgreSQL server (psycopg 3): the same API and promises as the SQLite store.

Events are append-only (a trigger refuses updates, deletes and truncation); each event's sequence number is
assigned inside its transaction under a per-run advisory lock, so writers in any number of processes and
machines never collide or leave gaps. A write that returned is committed on the server, so it survives
``kill -9`` of the writer; ``durability="full"`` also waits for the server's WAL to reach its disk on every
commit (``synchronous_commit``), so it survives a crash of the server's machine, as SQLite's ``full`` survives
power loss (the default leaves that flush to the server's WAL writer, a fraction of a second later).
LangGraph checkpoints live in the same database (LangGraph's own Postgres checkpointer).
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq

from lab.secrets import redact, redact_url
from lab.traces.errors import StoreError
from lab.traces.store import SCHEMA_VERSION, Connection, TraceStore

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    task TEXT, agent TEXT, model TEXT, seed BIGINT,
    is_human INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION,
    elapsed DOUBLE PRECISION,
    error TEXT,
    owner TEXT,
    parent_run_id TEXT, fork_step INTEGER,
    batch_id TEXT,
    config TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE INDEX IF NOT EXISTS runs_batch ON runs(batch_id);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    elapsed DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    span_id TEXT, parent_id TEXT, agent TEXT,
    attrs TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    item_id TEXT,
    scorer TEXT NOT NULL,
    dimension TEXT NOT NULL,
    value DOUBLE PRECISION,
    label TEXT,
    provenance TEXT NOT NULL,
    source TEXT,
    final INTEGER NOT NULL,
    elapsed DOUBLE PRECISION NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS scores_item ON scores(item_id, scorer);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE OR REPLACE FUNCTION lab_events_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
CREATE OR REPLACE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION lab_events_append_only();
CREATE OR REPLACE TRIGGER events_append_only_t BEFORE TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION lab_events_append_only();
"""

@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (``%`` doubled; quoted text left as is)."""
    out, quote = [], None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


class _Connection:
    """A psycopg connection speaking the subset of :mod:`sqlite3`'s connection API the store uses."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        self.raw = conn

    def execute(self, sql: str, args: Any = ()) -> psycopg.Cursor[tuple[Any, ...]]:
        """Run one statement (SQLite's ``?`` placeholders)."""
        return self.raw.execute(_pg_sql(sql), tuple(args))

    def executemany(self, sql: str, rows: Any) -> None:
        """Run one statement for each row of arguments."""
        with self.raw.cursor() as cur:
            cur.executemany(_pg_sql(sql), rows)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        """Close the connection."""
        self.raw.close()


class PostgresTraceStore(TraceStore):
    """Runs, events and scores in a PostgreSQL database (the :class:`TraceStore` API).

    Args:
        url: ``postgresql://user[:password]@host[:port]/database[?options]`` (libpq's URL form).
        readonly: Open without writing (no schema creation, no recovery; sessions are read-only).
        durability: ``"normal"`` (a returned write survives the writer's death) or ``"full"`` (and a crash of
            the server's machine: ``synchronous_commit`` on).
        recover: Mark runs whose writing process died as ``interrupted`` on open (this machine's only).

    Attributes:
        path: The URL with its password hidden (for messages).
        checkpointer: LangGraph's Postgres checkpointer on the same database.

    Raises:
        StoreError: The server cannot be reached, refuses the login, or the database is not a trace store.
    """

    _DatabaseError = psycopg.Error
    _IntegrityError = psycopg.errors.UniqueViolation
    _BEGIN = "BEGIN"

    def __init__(self, url: str, *, readonly: bool = False, durability: str = "normal",
                 recover: bool = True) -> None:
        if durability not in ("normal", "full"):
            raise StoreError(f"durability must be 'normal' or 'full', not {durability!r}")
        self.url = url
        self.path = redact_url(url)  # type: ignore[assignment]
        self.readonly = readonly
        self._sync = "on" if durability == "full" else "off"
        self._local = threading.local()
        self._conns = []
        self._lock = threading.Lock()
        self._listeners = []  # what TraceStore.add_listener fills (live telemetry)
        conn = self._conn()
        if readonly:
            self._check_readable(conn)
            return
        with self._write(conn):
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('lab.schema'))")
            conn.raw.execute(_DDL)
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
                         (str(SCHEMA_VERSION),))
        if recover:
            self.recover()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as its URL (so the pickle holds the password: keep it as secret as the URL); unpickling opens
        the same store afresh in the receiving process (a cluster worker's own connections), without recovery."""
        return (_reopen, (self.url, self.readonly, "full" if self._sync == "on" else "normal"))

    def __repr__(self) -> str:
        return f"PostgresTraceStore({self.path!r})"

    def _explain(self, e: Exception) -> str:
        diag = getattr(e, "diag", None)
        msg = " ".join(((diag and diag.message_primary) or str(e)).split()) or type(e).__name__
        if isinstance(e, psycopg.OperationalError) and not getattr(e, "sqlstate", None):
            return f"cannot reach the trace store {self.path}: {redact(msg)}"
        if isinstance(e, psycopg.errors.ReadOnlySqlTransaction):
            return f"trace store {self.path} was opened read-only"
        if isinstance(e, psycopg.errors.DiskFull):
            return (f"cannot write the trace store {self.path}: the server's disk is full ({msg}); "
                    "what this write held was not recorded, everything recorded before is kept")
        return f"trace store {self.path}: {redact(msg)}"

    def _check_readable(self, conn: Connection) -> None:
        try:
            conn.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
        except psycopg.errors.UndefinedTable:
            raise StoreError(f"no trace store at {self.path} (the database has no runs table)") from None
        except psycopg.Error as e:
            raise StoreError(self._explain(e)) from e

    def _conn(self) -> _Connection:
        """This thread's connection (opened on first use)."""
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=10, application_name="lab")
            if self.readonly:
                raw.execute("SET default_transaction_read_only = on")
            else:
                raw.execute(f"SET synchronous_commit = {self._sync}")
        except psycopg.Error as e:
            raise StoreError(self._explain(e)) from None
        conn = self._local.conn = _Connection(raw)
        with self._lock:
            self._conns.append(conn)
        return conn

    def _lock_runs(self, conn: Connection, run_ids: set[str]) -> None:
        # Sorted, so two writers of the same runs never wait on each other in a cycle.
        for rid in sorted(run_ids):
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (rid,))

    def _json_value_sql(self, path: tuple[str, ...]) -> tuple[str, list[str]]:
        """PostgreSQL's ``json_extract_path`` on the attributes' text (``json``, not ``jsonb``, so an object keeps
        its key order); the same paths as SQLite's are accepted."""
        super()._json_value_sql(path)
        return f"json_extract_path(attrs::json, {','.join('?' * len(path))})", list(path)

    def query(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        """Run a read-only SQL query (SQLite's ``?`` placeholders are accepted)."""
        try:
            return self._conn().execute(sql, args).fetchall()
        except psycopg.Error as e:
            raise StoreError(self._explain(e)) from e

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]:
        """LangGraph's Postgres checkpointer on this database (secrets redacted from checkpoints)."""
        from lab.traces.checkpoints import checkpointer_for

        return checkpointer_for(self.url)


def _reopen(url: str, readonly: bool, durability: str) -> PostgresTraceStore:
    """A store unpickled in another process: the same database, its own connections, no recovery (runs this
    process did not write are not its to mark)."""
    return PostgresTraceStore(url, readonly=readonly, durability=durability, recover=False)
