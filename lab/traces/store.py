"""Append-only SQLite trace store: runs, events and scores.

One database per project directory (WAL mode). Any number of threads and processes may write at
once; each event's sequence number is assigned inside the writing transaction, so events are never
lost or reordered. A write that returned survives ``kill -9`` of the writer (the WAL is in the OS
page cache before the call returns); pass ``durability="full"`` to also survive power loss.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import lab.traces.schema as schema
from lab.secrets import redact, redact_all
from lab.traces.errors import StoreError
from lab.traces.locations import default_store_path
from lab.traces.rows import EventValues, JsonScalar, RunRow, ScoreRange, ScoreRow, StoreTotals
from lab.traces.schema import FINAL_STATUSES, Event, EventKind, RunStatus, Score

if TYPE_CHECKING:
    import pandas as pd
    from langgraph.checkpoint.base import BaseCheckpointSaver

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    task TEXT, agent TEXT, model TEXT, seed INTEGER,
    is_human INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    created_at REAL NOT NULL, finished_at REAL,
    elapsed REAL,
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
    ts REAL NOT NULL,
    elapsed REAL NOT NULL,
    kind TEXT NOT NULL,
    span_id TEXT, parent_id TEXT, agent TEXT,
    attrs TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    item_id TEXT,
    scorer TEXT NOT NULL,
    dimension TEXT NOT NULL,
    value REAL,
    label TEXT,
    provenance TEXT NOT NULL,
    source TEXT,
    final INTEGER NOT NULL,
    elapsed REAL NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS scores_item ON scores(item_id, scorer);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TRIGGER IF NOT EXISTS events_append_only_u BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_d BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""

_RUN_COLUMNS = (
    "run_id", "task", "agent", "model", "seed", "is_human", "status", "created_at", "finished_at",
    "elapsed", "error", "owner", "parent_run_id", "fork_step", "batch_id", "config",
)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
# The C encoder json.dumps builds on every call, built once (a third of the per-event ingest cost);
# the same bytes as _ENCODER.encode, checked below, else the plain encoder is used. (CPython's private
# ``json.encoder.c_make_encoder``, absent from the type stubs, hence looked up by name.)
_c_make_encoder: Callable[..., Callable[[Any, int], tuple[str, ...]]] | None = getattr(
    json.encoder, "c_make_encoder", None)
_C_ENCODE = _c_make_encoder and _c_make_encoder(None, str, encode_basestring, None, ":", ",", False, False, True)


def dumps(obj: Any) -> str:
    """The one JSON encoding used for stored payloads (stable, so exports round-trip)."""
    return "".join(_C_ENCODE(obj, 0)) if _C_ENCODE else _ENCODER.encode(obj)


if _C_ENCODE and dumps(_probe := {"a": [1.5, -0.0, 1e16, None, True], "é\n": "\u2028"}) != _ENCODER.encode(_probe):
    _C_ENCODE = None




def _process_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except OSError:
        return "?"


def current_owner() -> str:
    """``host:pid:start`` of this process, used to find runs whose writer died."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by an owner string still runs (other hosts count as alive)."""
    if not owner:
        return False
    try:
        host, pid_s, start = owner.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start == "?" or _process_start(pid) == start



class Cursor(Protocol):
    """What the store reads of a database cursor (:mod:`sqlite3`'s, or psycopg's)."""

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        ...

    def fetchone(self) -> Any:
        """The next row, ``None`` when there is none."""
        ...

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        ...


class Connection(Protocol):
    """What the store uses of a database connection: :class:`sqlite3.Connection`, or the PostgreSQL store's
    wrapper of a psycopg connection (``?`` placeholders in both)."""

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        ...

    def execute(self, sql: str, args: Any = ..., /) -> Cursor:
        """Run one statement."""
        ...

    def executemany(self, sql: str, rows: Any, /) -> object:
        """Run one statement for each row of arguments."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class TraceStore:
    """Runs, events and scores in one SQLite database.

    Args:
        path: Database file; defaults to :func:`default_store_path`.
        readonly: Open without writing (no schema creation, no recovery).
        durability: ``"normal"`` (survives a killed process) or ``"full"`` (fsync every commit).
        recover: Mark runs whose writing process died as ``interrupted`` on open.

    Raises:
        StoreError: The file is not a trace store, is corrupt, or cannot be written.
    """

    _DatabaseError: type[Exception] = sqlite3.DatabaseError
    _IntegrityError: type[Exception] = sqlite3.IntegrityError
    _BEGIN = "BEGIN IMMEDIATE"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        readonly: bool = False,
        durability: str = "normal",
        recover: bool = True,
    ) -> None:
        if durability not in ("normal", "full"):
            raise StoreError(f"durability must be 'normal' or 'full', not {durability!r}")
        url = str(path if path is not None else os.environ.get("LAB_STORE", ""))
        if url.startswith(("postgresql://", "postgres://")):
            raise StoreError(f"{redact(url)} is a PostgreSQL store: open it with lab.traces.open_trace_store")
        self.path = Path(path) if path is not None else default_store_path()
        self.readonly = readonly
        self._sync = durability.upper()
        self._local = threading.local()
        self._conns: list[Connection] = []
        self._lock = threading.Lock()
        self._listeners: list[Callable[[TraceStore, list[Event]], None]] = []
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create store directory {self.path.parent}: {e.strerror}") from e
        elif not self.path.exists():
            raise StoreError(f"no trace store at {self.path}")
        self._check_not_empty()
        if not readonly and not self.path.exists():
            self._create()
        conn = self._conn()
        if not readonly:
            try:
                with self._write(conn):
                    for stmt in _DDL.split(";\n"):
                        if stmt.strip():
                            conn.execute(stmt)
                    conn.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
            except sqlite3.DatabaseError as e:
                raise StoreError(self._explain(e)) from e
            if recover:
                self.recover()
        else:
            self._check_readable(conn)

    # -- connections -------------------------------------------------------------------------

    def _check_not_empty(self) -> None:
        """A store file of 0 bytes is damage (new stores appear whole, see :meth:`_create`), never a new store."""
        try:
            empty = self.path.stat().st_size == 0
        except OSError:
            return
        wal = Path(f"{self.path}-wal")
        if empty and not (wal.exists() and wal.stat().st_size > 0):
            raise StoreError(f"{self.path} is empty (0 bytes): the store was truncated or is not a trace store; "
                             "it was left untouched (restore it from a backup, or remove it to start a new store)")

    def _create(self) -> None:
        """Create a new store whole: its schema is written under a temporary name, then linked into place,
        so no process ever sees a half-made (empty) store file."""
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.new")
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(f"BEGIN;{_DDL};INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
                                   "COMMIT;")
            finally:
                conn.close()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process created it first: use theirs
            except OSError:  # no hard links on this filesystem
                if not self.path.exists():
                    os.replace(tmp, self.path)
        except sqlite3.DatabaseError as e:
            raise StoreError(self._explain(e)) from e
        except OSError as e:
            raise StoreError(f"cannot create the trace store {self.path}: {e.strerror}") from e
        finally:
            for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                p.unlink(missing_ok=True)

    def _disk_full(self) -> bool:
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return False
        free = (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize
        return free < 1 << 20

    def _explain(self, e: Exception) -> str:
        msg = str(e)
        if "full" in msg or ("disk I/O error" in msg and self._disk_full()):
            return (f"cannot write the trace store {self.path}: the disk is full ({msg}); "
                    "what this write held was not recorded, everything recorded before is kept")
        if "not a database" in msg or "malformed" in msg:
            return f"{self.path} is not a readable trace store ({msg}); it was left untouched"
        if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
            if self.path.parent.is_dir() and not os.access(self.path.parent, os.W_OK):
                msg = f"its folder {self.path.parent} is read-only"
            return f"cannot write the trace store {self.path} ({msg}); open it with readonly=True to read"
        return f"trace store {self.path}: {msg}"

    def _check_readable(self, conn: Connection) -> None:
        try:
            conn.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
        except sqlite3.DatabaseError as e:
            raise StoreError(self._explain(e)) from e

    def _connect_readonly(self) -> sqlite3.Connection:
        """A read-only connection; on a read-only disk (where WAL's shared-memory file cannot be
        created) the file is opened as immutable, unless it holds unsaved WAL content."""
        uri = f"file:{quote(str(self.path))}"
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, isolation_level=None, timeout=60, check_same_thread=False)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError as e:
            conn.close()
            if "unable to open" not in str(e):
                raise
        wal = Path(f"{self.path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise StoreError(f"{self.path} has changes not yet merged from {wal.name} and its folder cannot be "
                             "written; copy the store's files to a writable folder to read them")
        return sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None, timeout=60,
                               check_same_thread=False)

    def _conn(self) -> Connection:
        """This thread's connection (opened on first use)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if self.readonly:
                conn = self._connect_readonly()
            else:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, timeout=60, check_same_thread=False
                )
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
                conn.execute(f"PRAGMA synchronous={self._sync}")
            conn.execute("PRAGMA busy_timeout=60000")
        except sqlite3.DatabaseError as e:
            raise StoreError(self._explain(e)) from e
        self._local.conn = conn
        with self._lock:
            self._conns.append(conn)
        return conn

    @contextmanager
    def _write(self, conn: Connection | None = None) -> Iterator[Connection]:
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only")
        conn = conn or self._conn()
        if conn.in_transaction:  # nested inside transaction(): join it
            yield conn
            return
        try:
            conn.execute(self._BEGIN)
        except self._DatabaseError as e:
            raise StoreError(self._explain(e)) from e
        try:
            yield conn
        except self._DatabaseError as e:
            self._rollback(conn)
            raise StoreError(self._explain(e)) from e
        except BaseException:
            self._rollback(conn)
            raise
        else:
            try:
                conn.execute("COMMIT")
            except self._DatabaseError as e:
                self._rollback(conn)
                raise StoreError(self._explain(e)) from e

    def _rollback(self, conn: Connection) -> None:
        """Roll back what is left of a failed transaction; SQLite has already rolled back after some errors
        (a full disk), and a second error must not hide the first."""
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except self._DatabaseError:
                pass

    def _lock_runs(self, conn: Connection, run_ids: set[str]) -> None:
        """Hold the runs' sequence numbers until the transaction ends (SQLite's write lock already does)."""

    @contextmanager
    def transaction(self) -> Iterator[TraceStore]:
        """Group writes so they land together or not at all (used by importers)."""
        with self._write():
            yield self

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]:
        """LangGraph's checkpointer for this store's runs: a SQLite file beside the store, made on first use
        (:func:`lab.traces.checkpoints.checkpointer_for`)."""
        from lab.traces.checkpoints import checkpointer_for

        return checkpointer_for(self.path)

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for c in self._conns:
                c.close()
            self._conns.clear()
        self._local = threading.local()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ----------------------------------------------------------------------------------

    def create_run(
        self,
        config: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
        task: str | None = None,
        agent: str | None = None,
        model: str | None = None,
        seed: int | None = None,
        is_human: bool = False,
        status: str = RunStatus.RUNNING.value,
        created_at: float | None = None,
        parent_run_id: str | None = None,
        fork_step: int | None = None,
        batch_id: str | None = None,
    ) -> str:
        """Register a run and return its id. ``config`` is kept whole (secrets redacted)."""
        config = dict(config or {})
        task = task if task is not None else config.get("task")
        agent = agent if agent is not None else config.get("agent")
        model = model if model is not None else config.get("model")
        seed = seed if seed is not None else config.get("seed")
        if status not in {s.value for s in RunStatus}:
            raise StoreError(f"unknown run status {status!r}")
        run_id = run_id or uuid.uuid4().hex[:16]
        row = (
            run_id, _str(task), _str(agent), _str(model), seed, int(is_human), status,
            created_at if created_at is not None else time.time(), None, None, None,
            current_owner() if status == RunStatus.RUNNING.value else None,
            parent_run_id, fork_step, batch_id, redact(dumps(config)),
        )
        with self._write() as conn:
            try:
                conn.execute(f"INSERT INTO runs VALUES ({','.join('?' * len(row))})", row)
            except self._IntegrityError as e:
                raise StoreError(f"run {run_id} already exists in {self.path}") from e
        return run_id

    def finish_run(
        self, run_id: str, status: str, *, error: str | None = None, elapsed: float | None = None,
        finished_at: float | None = None,
    ) -> None:
        """Set a run's final status (``done``, ``failed``, ``cancelled``, ``interrupted``)."""
        if status not in FINAL_STATUSES:
            raise StoreError(f"{status!r} is not a final run status ({', '.join(sorted(FINAL_STATUSES))})")
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status=?, error=?, finished_at=?, elapsed=COALESCE(?, elapsed),"
                " owner=NULL WHERE run_id=?",
                (status, redact(error) if error else None,
                 finished_at if finished_at is not None else time.time(), elapsed, run_id),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no run {run_id} in {self.path}")

    def reopen_run(self, run_id: str) -> None:
        """Set a paused or interrupted run back to ``running`` (owned by this process) to resume it.

        Raises:
            StoreError: No such run, or it finished ``done`` (a finished run is forked, not resumed).
        """
        with self._write() as conn:
            row = conn.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id} in {self.path}")
            if row[0] == RunStatus.DONE.value:
                raise StoreError(f"run {run_id} is done; fork it to continue from one of its steps")
            conn.execute("UPDATE runs SET status=?, owner=?, finished_at=NULL, error=NULL WHERE run_id=?",
                         (RunStatus.RUNNING.value, current_owner(), run_id))

    # -- leases ----------------------------------------------------------------------------------

    def take_lease(self, key: str, owner: str, token: str, ttl: float) -> str | None:
        """Take the lease on ``key`` (a combination) for ``ttl`` seconds, atomically: it is free, expired, held
        by a process that is gone (same host), or already ``token``'s.

        Args:
            key: What is leased.
            owner: The taker's ``host:pid:start`` (:func:`current_owner` of its process).
            token: The taker's own id (one process may hold many leases).
            ttl: Seconds until the lease expires unless renewed.

        Returns:
            ``None`` when taken, else the live holder's owner string.
        """
        now = time.time()
        with self._write() as conn:
            self._lock_runs(conn, {f"lease:{key}"})  # one taker at a time (PostgreSQL; SQLite's write lock is one)
            row = conn.execute("SELECT owner, token, expires FROM leases WHERE key=?", (key,)).fetchone()
            if row is not None and row[1] != token and row[2] > now and owner_alive(row[0]):
                return str(row[0])
            conn.execute("DELETE FROM leases WHERE key=?", (key,))
            conn.execute("INSERT INTO leases VALUES (?,?,?,?)", (key, owner, token, now + ttl))
        return None

    def renew_lease(self, key: str, token: str, ttl: float) -> bool:
        """Extend ``token``'s lease on ``key`` by ``ttl`` seconds from now; ``False`` when it is no longer held."""
        with self._write() as conn:
            cur = conn.execute("UPDATE leases SET expires=? WHERE key=? AND token=?", (time.time() + ttl, key, token))
        return cur.rowcount == 1

    def release_lease(self, key: str, token: str | None) -> None:
        """Give up ``token``'s lease on ``key`` (nothing when another holds it); ``token=None`` drops whoever's
        it is (an executor that lost the holder's process, e.g. a dead cluster node)."""
        with self._write() as conn:
            if token is None:
                conn.execute("DELETE FROM leases WHERE key=?", (key,))
            else:
                conn.execute("DELETE FROM leases WHERE key=? AND token=?", (key, token))

    def set_run_fields(self, run_id: str, **fields: Any) -> None:
        """Update descriptive run columns (``elapsed``, ``batch_id``, ``error``...)."""
        allowed = {"elapsed", "batch_id", "error", "task", "agent", "model"}
        bad = set(fields) - allowed
        if bad:
            raise StoreError(f"cannot set run fields {sorted(bad)}")
        sets = ",".join(f"{k}=?" for k in fields)
        values = [redact(v) if isinstance(v, str) else v for v in fields.values()]
        with self._write() as conn:
            conn.execute(f"UPDATE runs SET {sets} WHERE run_id=?", (*values, run_id))

    def restore_run(self, run: Mapping[str, Any], events: Iterable[Event]) -> str:
        """Insert a whole finished run as recorded elsewhere: its row and its events, verbatim.

        Used by importers. Events keep their ``seq``, ``ts`` and ``span_id``; ``attrs`` are encoded
        with :func:`dumps`, so a run exported from a store comes back with byte-identical payloads.

        Args:
            run: Run fields as :meth:`get_run` returns them (``run_id``, ``config``, ``status`` ...).
            events: The run's events, ``seq`` 0, 1, 2 ... in order.

        Returns:
            The run id.

        Raises:
            StoreError: The run exists already, its status is not final, or the seqs are not 0..n-1.
        """
        row = {c: run.get(c) for c in _RUN_COLUMNS}
        if not row["run_id"]:
            raise StoreError("a restored run needs a run_id")
        if row["status"] not in FINAL_STATUSES:
            raise StoreError(f"run {row['run_id']}: status {row['status']!r} is not a final run status")
        for col in ("task", "agent", "model", "error", "batch_id"):
            row[col] = _str(row[col])
        row["is_human"] = int(bool(row["is_human"]))
        row["created_at"] = row["created_at"] if row["created_at"] is not None else time.time()
        row["owner"] = None
        row["config"] = redact(dumps(row["config"] or {}))
        rows, score_rows = [], []
        events = list(events)
        payloads = redact_all([dumps(ev.attrs) for ev in events])
        for i, (ev, attrs) in enumerate(zip(events, payloads, strict=True)):
            if ev.run_id != row["run_id"] or ev.seq != i:
                raise StoreError(f"run {row['run_id']}: event {i} has run {ev.run_id!r} seq {ev.seq}; "
                                 f"expected run {row['run_id']!r} seq {i}")
            ev.kind = ev.kind.value if isinstance(ev.kind, EventKind) else ev.kind
            rows.append((ev.run_id, ev.seq, ev.ts, ev.elapsed, ev.kind, ev.span_id, ev.parent_id, ev.agent, attrs))
            if ev.kind == EventKind.SCORE.value:
                score_rows.append(_score_row(ev))
        with self._write() as conn:
            try:
                conn.execute(f"INSERT INTO runs VALUES ({','.join('?' * len(_RUN_COLUMNS))})",
                             tuple(row.values()))
            except self._IntegrityError as e:
                raise StoreError(f"run {row['run_id']} already exists in {self.path}") from e
            conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows)
            if score_rows:
                conn.executemany("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", score_rows)
        return str(row["run_id"])

    def recover(self) -> list[str]:
        """Mark ``running`` runs whose writing process is gone as ``interrupted``; return their ids."""
        rows = self.query("SELECT run_id, owner FROM runs WHERE status='running'")
        dead = [rid for rid, owner in rows if not owner_alive(owner)]
        for rid in dead:
            with self._write() as c:
                c.execute(
                    "UPDATE runs SET status='interrupted', owner=NULL, finished_at=?,"
                    " error=COALESCE(error, 'the process running it stopped') WHERE run_id=? AND status='running'",
                    (time.time(), rid),
                )
        return dead

    def get_run(self, run_id: str) -> RunRow:
        """One run's row (``config`` parsed).

        Raises:
            StoreError: No such run (an unambiguous id prefix is accepted).
        """
        rows = self.query(f"SELECT {','.join(_RUN_COLUMNS)} FROM runs WHERE run_id=?", (run_id,))
        if not rows:
            rows = self.query(f"SELECT {','.join(_RUN_COLUMNS)} FROM runs WHERE run_id LIKE ? LIMIT 2",
                              (run_id + "%",))
            if len(rows) != 1:
                raise StoreError(f"no run {run_id!r} in {self.path}" if not rows else f"run id {run_id!r} is ambiguous")
        return _run_row(rows[0])

    def list_runs(self, *, status: str | None = None, batch_id: str | None = None) -> list[RunRow]:
        """All runs (optionally filtered), oldest first."""
        sql = f"SELECT {','.join(_RUN_COLUMNS)} FROM runs"
        where, args = [], []
        if status:
            where.append("status=?")
            args.append(status)
        if batch_id:
            where.append("batch_id=?")
            args.append(batch_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, run_id"
        return [_run_row(r) for r in self.query(sql, args)]

    # -- events ------------------------------------------------------------------------------------

    def append(self, event: Event) -> Event:
        """Append one event; its ``seq`` (and ``ts`` if unset) are filled in. Durable on return."""
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        """Append events in one transaction, in order. Durable on return."""
        events = list(events)
        if not events:
            return events
        now = time.time()
        payloads = redact_all([dumps(ev.attrs) for ev in events])
        with self._write() as conn:
            self._lock_runs(conn, {ev.run_id for ev in events})
            next_seq: dict[str, int] = {}
            rows, score_rows = [], []
            for ev, attrs in zip(events, payloads, strict=True):
                seq = next_seq.get(ev.run_id)
                if seq is None:
                    seq = conn.execute(
                        "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE run_id=?", (ev.run_id,)
                    ).fetchone()[0]
                ev.seq = seq
                next_seq[ev.run_id] = seq + 1
                if not ev.ts:
                    ev.ts = now
                kind = ev.kind.value if isinstance(ev.kind, EventKind) else ev.kind
                ev.kind = kind
                rows.append((ev.run_id, seq, ev.ts, ev.elapsed, kind, ev.span_id, ev.parent_id, ev.agent, attrs))
                if kind == EventKind.SCORE.value:
                    score_rows.append(_score_row(ev))
            conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows)
            if score_rows:
                conn.executemany("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", score_rows)
        for listener in self._listeners:
            try:
                listener(self, events)
            except Exception:  # noqa: BLE001 - a listener (live telemetry) never fails a write
                pass
        return events

    def add_listener(self, listener: Callable[[TraceStore, list[Event]], None]) -> None:
        """Call ``listener(store, events)`` after each append commits (once per listener; exceptions ignored)."""
        with self._lock:
            if listener not in self._listeners:
                self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[TraceStore, list[Event]], None]) -> None:
        """Stop calling ``listener``."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def add_score(self, run_id: str, score: Score, *, elapsed: float = 0.0, ts: float | None = None,
                  span_id: str | None = None, parent_id: str | None = None, agent: str | None = None) -> Event:
        """Record a score as an event (and in the indexed scores table)."""
        return self.append(score_event(run_id, score, elapsed=elapsed, ts=ts or 0.0, span_id=span_id,
                                       parent_id=parent_id, agent=agent))

    def events(self, run_id: str, *, kinds: Iterable[str] | None = None, after_seq: int = -1) -> list[Event]:
        """A run's events in order (optionally only some kinds, or only those after ``after_seq``)."""
        sql = ("SELECT run_id, kind, attrs, seq, ts, elapsed, span_id, parent_id, agent FROM events"
               " WHERE run_id=? AND seq>?")
        args: list[Any] = [run_id, after_seq]
        if kinds:
            kinds = [k.value if isinstance(k, EventKind) else k for k in kinds]
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += kinds
        sql += " ORDER BY seq"
        return [Event(r[0], r[1], json.loads(r[2]), *r[3:]) for r in self.query(sql, args)]

    def latest_events(self, *, statuses: Iterable[str] | None = None, kinds: Iterable[str] | None = None,
                      run_id: str | None = None) -> list[Event]:
        """Each run's latest event, runs oldest first.

        Args:
            statuses: Only runs with one of these statuses (default: every run).
            kinds: Only runs whose latest event is of one of these kinds (a run whose latest event is of another
                kind is left out: this is not each run's latest event *of* a kind).
            run_id: Only this run.
        """
        sql = ("SELECT e.run_id, e.kind, e.attrs, e.seq, e.ts, e.elapsed, e.span_id, e.parent_id, e.agent"
               " FROM events e JOIN runs r ON r.run_id = e.run_id"
               " WHERE e.seq = (SELECT MAX(seq) FROM events WHERE run_id = e.run_id)")
        args: list[Any] = []
        for column, values in (("r.status", statuses), ("e.kind", kinds)):
            if values is not None:
                wanted = [v.value if isinstance(v, EventKind) else v for v in values]
                if not wanted:
                    return []
                sql += f" AND {column} IN ({','.join('?' * len(wanted))})"
                args += wanted
        if run_id is not None:
            sql += " AND e.run_id = ?"
            args.append(run_id)
        sql += " ORDER BY r.created_at, r.run_id"
        return [Event(r[0], r[1], json.loads(r[2]), *r[3:]) for r in self.query(sql, args)]

    def event_values(self, kinds: Iterable[str], keys: Sequence[str | tuple[str, ...]]) -> list[EventValues]:
        """Some attribute values of every event of ``kinds`` (all runs), by run and sequence number; only those
        values are read, not whole events.

        Args:
            kinds: The event kinds to read.
            keys: The attributes to read: a name, or a path into nested objects (``("lab.arguments", "answer")``).

        Returns:
            One row per event, with one value per key (``None`` where the event has none), as SQL reads JSON:
            JSON ``true``/``false`` as 1/0, an object or array as its JSON text.

        Raises:
            ValueError: A key holds a double quote (a JSON path cannot name it).
        """
        wanted = [k.value if isinstance(k, EventKind) else k for k in kinds]
        if not wanted:
            return []
        columns, args = [], []
        for key in keys:
            column, path_args = self._json_value_sql((key,) if isinstance(key, str) else key)
            columns.append(column)
            args += path_args
        sql = (f"SELECT run_id, seq, kind{''.join(', ' + c for c in columns)} FROM events"
               f" WHERE kind IN ({','.join('?' * len(wanted))}) ORDER BY run_id, seq")
        return [EventValues(r[0], r[1], r[2], tuple(_sql_scalar(v) for v in r[3:]))
                for r in self.query(sql, [*args, *wanted])]

    def _json_value_sql(self, path: tuple[str, ...]) -> tuple[str, list[str]]:
        """The SQL expression (and its arguments) that reads the value at ``path`` of an event's ``attrs``."""
        if not path or any('"' in k for k in path):
            raise ValueError(f"cannot read attribute path {path!r}")
        return "json_extract(attrs, ?)", ["$" + "".join(f'."{k}"' for k in path)]

    def final_scores(self, run_id: str) -> dict[str, float | None]:
        """A run's final scores by name (``scorer``, or ``scorer.dimension`` for rubric dimensions)."""
        rows = self.query("SELECT scorer, dimension, value FROM scores WHERE run_id=? AND final=1 ORDER BY seq",
                          (run_id,))
        return {(s if d == "overall" else f"{s}.{d}"): v for s, d, v in rows}

    def scores(self, run_id: str | None = None, *, scorer: str | None = None, provenance: str | None = None,
               source: str | None = None, final_only: bool = False, valued: bool = False) -> list[ScoreRow]:
        """Scores with their provenance and details, in the order they were given (by time, then run and sequence
        number).

        Args:
            run_id: Only this run's.
            scorer: Only this scorer's.
            provenance: Only of this provenance (``rule``, ``model``, ``human``).
            source: Only from this judge or expert.
            final_only: Only final scores (no intermediate ones).
            valued: Only scores with a numeric value.
        """
        sql = ("SELECT s.run_id, s.seq, s.item_id, s.scorer, s.dimension, s.value, s.label, s.provenance, s.source,"
               " s.final, s.elapsed, s.ts, e.attrs FROM scores s JOIN events e ON e.run_id = s.run_id AND e.seq = s.seq"
               " WHERE 1=1")
        args: list[Any] = []
        for column, value in (("s.run_id", run_id), ("s.scorer", scorer), ("s.provenance", provenance),
                              ("s.source", source)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if final_only:
            sql += " AND s.final = 1"
        if valued:
            sql += " AND s.value IS NOT NULL"
        sql += " ORDER BY s.ts, s.run_id, s.seq"
        return [ScoreRow(run_id=r[0], seq=r[1], item_id=r[2], scorer=r[3], dimension=r[4], value=r[5], label=r[6],
                         provenance=r[7], source=r[8], final=bool(r[9]), elapsed=r[10], ts=r[11],
                         details=json.loads(r[12]).get(schema.SCORE_DETAILS))
                for r in self.query(sql, args)]

    def score_ranges(self, scorer: str, *, provenance: str | None = None) -> list[ScoreRange]:
        """The lowest and highest value ``scorer`` gave on each dimension (only scores of ``provenance``, when
        given), by dimension."""
        sql = "SELECT dimension, MIN(value), MAX(value) FROM scores WHERE scorer = ? AND value IS NOT NULL"
        args = [scorer]
        if provenance is not None:
            sql += " AND provenance = ?"
            args.append(provenance)
        sql += " GROUP BY dimension ORDER BY dimension"
        return [ScoreRange(d, float(lo), float(hi)) for d, lo, hi in self.query(sql, args)]

    def last_elapsed(self, run_id: str, *, until: float | None = None) -> float:
        """The working time of a run's latest event (0 when it has none); with ``until``, of its latest event
        recorded at or before that time (Unix seconds)."""
        sql = "SELECT COALESCE(MAX(elapsed), 0) FROM events WHERE run_id=?"
        args: list[Any] = [run_id]
        if until is not None:
            sql += " AND ts<=?"
            args.append(until)
        return float(self.query(sql, args)[0][0])

    def raw_events(self, run_id: str) -> list[tuple[Any, ...]]:
        """A run's event rows exactly as stored (attrs as the stored JSON text)."""
        return self.query(
            "SELECT run_id, seq, ts, elapsed, kind, span_id, parent_id, agent, attrs FROM events"
            " WHERE run_id=? ORDER BY seq", (run_id,)
        )

    def count_events(self, run_id: str | None = None) -> int:
        """Number of events (of one run, or in the whole store)."""
        if run_id is None:
            return int(self.query("SELECT COUNT(*) FROM events")[0][0])
        return int(self.query("SELECT COUNT(*) FROM events WHERE run_id=?", (run_id,))[0][0])

    def totals(self) -> StoreTotals:
        """How many runs, running runs and scores the store holds, and when a run last finished: one cheap
        read that changes whenever runs are added, change status or get scores."""
        runs, running, scores, last = self.query(
            "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM runs WHERE status = ?),"
            " (SELECT COUNT(*) FROM scores), (SELECT COALESCE(MAX(finished_at), 0) FROM runs)",
            (RunStatus.RUNNING.value,))[0]
        return StoreTotals(int(runs), int(running), int(scores), float(last))

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only SQL query (the store's own readers and tests; everything else reads through the typed
        methods above, which every backend implements alike)."""
        try:
            return self._conn().execute(sql, tuple(args)).fetchall()
        except self._DatabaseError as e:
            raise StoreError(self._explain(e)) from e

    # -- DataFrames -----------------------------------------------------------------------------

    def runs_frame(self, *, with_scores: bool = True) -> pd.DataFrame:
        """Runs as a DataFrame, one row per run; with final scores as ``score.<scorer>`` columns."""
        from lab.traces.frames import runs_frame

        return runs_frame(self, with_scores=with_scores)

    def events_frame(self, run_id: str | None = None, *, expand: bool = False) -> pd.DataFrame:
        """Events as a DataFrame (one run's, or all); ``expand`` turns attributes into columns."""
        from lab.traces.frames import events_frame

        return events_frame(self, run_id, expand=expand)

    def scores_frame(self, *, final_only: bool = False) -> pd.DataFrame:
        """Scores as a DataFrame, one row per score, with provenance and run columns."""
        from lab.traces.frames import scores_frame

        return scores_frame(self, final_only=final_only)


def score_event(run_id: str, score: Score, *, elapsed: float = 0.0, ts: float = 0.0,
                span_id: str | None = None, parent_id: str | None = None, agent: str | None = None) -> Event:
    """The event that records ``score`` (OTel ``gen_ai.evaluation.*`` names)."""
    kind, attrs = schema.score(name=score.scorer, value=score.value, provenance=score.provenance,
                               source=score.source, item_id=score.item_id, dimension=score.dimension,
                               final=score.final, label=score.label, details=score.details or None)
    return Event(run_id, kind, attrs, ts=ts, elapsed=elapsed, span_id=span_id,
                 parent_id=parent_id, agent=agent)


def _score_row(ev: Event) -> tuple[Any, ...]:
    a = ev.attrs
    value = a.get(schema.EVAL_SCORE)
    return (
        ev.run_id, ev.seq, a.get(schema.SCORE_ITEM_ID), a[schema.EVAL_NAME],
        a.get(schema.SCORE_DIMENSION) or "overall", None if value is None else float(value),
        a.get(schema.EVAL_LABEL), a.get(schema.SCORE_PROVENANCE) or "rule",
        a.get(schema.SCORE_SOURCE), int(bool(a.get(schema.SCORE_FINAL, True))), ev.elapsed, ev.ts,
    )


def _sql_scalar(v: Any) -> JsonScalar:
    """A JSON value as SQLite's ``json_extract`` gives it: booleans as 1/0, objects and arrays as JSON text."""
    if isinstance(v, bool):
        return int(v)
    if v is None or isinstance(v, str | int | float):
        return v
    return dumps(v)


def _str(v: Any) -> str | None:
    """A descriptive run column as stored: text, secrets redacted (a model name may hold a URL with a key)."""
    return None if v is None else redact(str(v))


def _run_row(row: tuple[Any, ...]) -> RunRow:
    """A ``runs`` table row (columns in :data:`_RUN_COLUMNS` order) as a :class:`RunRow`."""
    (run_id, task, agent, model, seed, is_human, status, created_at, finished_at, elapsed, error, owner,
     parent_run_id, fork_step, batch_id, config) = row
    return RunRow(run_id=run_id, task=task, agent=agent, model=model, seed=seed, is_human=bool(is_human),
                  status=status, created_at=created_at, finished_at=finished_at, elapsed=elapsed, error=error,
                  owner=owner, parent_run_id=parent_run_id, fork_step=fork_step, batch_id=batch_id,
                  config=json.loads(config))
