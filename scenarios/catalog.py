"""The scenario catalog: logs and scenarios in SQL, frame data in the blob store.

Embedded SQLite (WAL) by default; any SQLAlchemy URL (e.g. PostgreSQL) by setting `catalog_url` in the
workspace's andon.yaml. Every write is one transaction, so a crash leaves the catalog as it was.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    case,
    cast,
    create_engine,
    event,
    exists,
    func,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from andon.errors import BadInput
from andon.ids import sha256_text
from andon.scenarios.blobstore import BlobStore
from andon.scenarios.logstore import ImportedLog, load_log, store_log
from andon.scenarios.query import OPS, Query, parse_query
from andon.scenarios.records import STATUS_ACTIVE, STATUS_RETIRED, Log, Provenance, Scenario
from andon.scenarios.schema import SCHEMA_VERSION, catalog_info, logs, metadata, scenario_tags, scenarios
from andon.scenarios.validation import validate_imported
from andon.workspace import Workspace

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_CACHE_KIB = 256 * 1024
MIN_ID_PREFIX = 6


def scenario_id_for(log_id: str, t_start_ns: int, t_end_ns: int) -> str:
    """A scenario is its window: the same log and times always give the same id.

    The hash of canonical JSON {"log_id", "t_end_ns", "t_start_ns"}, spelled out because bulk inserts
    compute a million of these.
    """
    text = f'{{"log_id":{json.dumps(log_id)},"t_end_ns":{int(t_end_ns)},"t_start_ns":{int(t_start_ns)}}}'
    return sha256_text(text)[:20]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class NewScenario:
    """A window to add; `tags` are attributed to `provenance`."""

    log_id: str
    t_start_ns: int
    t_end_ns: int
    tags: frozenset[str]
    provenance: Provenance


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, future=True)
    engine = create_engine(url, future=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Manage transactions ourselves so writers take the lock up front (BEGIN IMMEDIATE)
        # instead of deadlocking on a read-to-write upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # random-id B-tree inserts need the cache
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Catalog:
    """Repository of logs and scenarios. `Catalog(workspace)` takes a Workspace or its directory."""

    def __init__(self, workspace: Workspace | str | os.PathLike[str] | None = None) -> None:
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
        self.blobs = BlobStore(self.workspace.blobs_dir)
        self.engine = make_engine(self.workspace.catalog_url)
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            row = conn.execute(select(catalog_info.c.value).where(catalog_info.c.key == "schema_version")).first()
            if row is None:
                conn.execute(_insert_ignore(conn, catalog_info), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])
            elif int(row[0]) != SCHEMA_VERSION:
                raise BadInput(f"catalog schema version {row[0]} is not {SCHEMA_VERSION}: upgrade andon or the workspace")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- logs -----------------------------------------------------------------------------------
    def add_log(self, log: ImportedLog, provenance: Provenance, origin: str) -> tuple[str, bool]:
        """Validate, store and catalog a log, with one scenario spanning it tagged with its source.

        Returns (log_id, created); importing the same content again returns created=False and
        changes nothing. Blobs are written before the transaction; an interrupted import leaves at
        most unreferenced blobs, and rerunning it completes it.
        """
        validate_imported(log, origin)
        stored = store_log(self.blobs, log)
        tags = frozenset({log.source, *log.tags})
        whole = NewScenario(stored.log_id, stored.t_start_ns, stored.t_end_ns, tags, provenance)
        with self.engine.begin() as conn:
            if conn.execute(select(logs.c.log_id).where(logs.c.log_id == stored.log_id)).first():
                return stored.log_id, False
            conn.execute(logs.insert(), [{
                "log_id": stored.log_id, "source": log.source, "name": log.name, "manifest": stored.manifest,
                "n_frames": stored.n_frames, "t_start_ns": stored.t_start_ns, "t_end_ns": stored.t_end_ns,
                "meta": json.dumps(log.meta, sort_keys=True), "provenance": json.dumps(provenance.to_dict(), sort_keys=True),
                "created_at": _now(),
            }])
            self._insert_scenarios(conn, [whole], {stored.log_id: log.source})
        return stored.log_id, True

    def logs(self, source: str | None = None) -> list[str]:
        query = select(logs.c.log_id).order_by(logs.c.log_id)
        if source:
            query = query.where(logs.c.source == source)
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def log_row(self, log_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(logs).where(logs.c.log_id == log_id)).mappings().first()
            if row is None:
                matches = conn.execute(select(logs).where(logs.c.log_id.like(f"{log_id}%")).limit(2)).mappings().all()
                if len(matches) != 1 or len(log_id) < MIN_ID_PREFIX:
                    raise BadInput(f"no log {log_id!r} in the catalog: `andon scenarios stats` lists sources, "
                                   f"`andon scenarios search source:X --json` shows log ids")
                row = matches[0]
        return dict(row)

    def log(self, log_id: str) -> Log:
        row = self.log_row(log_id)
        return load_log(self.blobs, row["log_id"], row["manifest"])

    # ----- scenarios ------------------------------------------------------------------------------
    def add_scenarios(self, items: Iterable[NewScenario], chunk: int = 100_000) -> tuple[int, int]:
        """Add windows (bulk); an existing window gains the new tags. Returns (created, merged)."""
        created = merged = 0
        batch: list[NewScenario] = []
        for item in items:
            batch.append(item)
            if len(batch) >= chunk:
                c, m = self._add_batch(batch)
                created, merged, batch = created + c, merged + m, []
        if batch:
            c, m = self._add_batch(batch)
            created, merged = created + c, merged + m
        return created, merged

    def _add_batch(self, batch: Sequence[NewScenario]) -> tuple[int, int]:
        for item in batch:
            if item.t_end_ns < item.t_start_ns:
                raise BadInput(f"scenario window of log {item.log_id} ends ({item.t_end_ns} ns) before it "
                               f"starts ({item.t_start_ns} ns)")
        with self.engine.begin() as conn:
            log_ids = sorted({item.log_id for item in batch})
            rows = conn.execute(select(logs.c.log_id, logs.c.source, logs.c.t_start_ns, logs.c.t_end_ns)
                                .where(logs.c.log_id.in_(log_ids))).all()
            known = {r.log_id: r for r in rows}
            missing = [log_id for log_id in log_ids if log_id not in known]
            if missing:
                raise BadInput(f"unknown log ids {missing[:3]}: import the log first (`andon scenarios import`)")
            for item in batch:
                row = known[item.log_id]
                if item.t_start_ns < row.t_start_ns or item.t_end_ns > row.t_end_ns:
                    raise BadInput(f"window [{item.t_start_ns}, {item.t_end_ns}] ns lies outside log {item.log_id} "
                                   f"[{row.t_start_ns}, {row.t_end_ns}] ns")
            return self._insert_scenarios(conn, batch, {r.log_id: r.source for r in rows})

    def _insert_scenarios(self, conn: Connection, batch: Sequence[NewScenario],
                          sources: dict[str, str]) -> tuple[int, int]:
        now = _now()
        rows: dict[str, tuple[Any, ...]] = {}
        tag_rows: dict[tuple[str, str], tuple[str, str, str]] = {}
        provenance_json: dict[Provenance, tuple[str, str]] = {}
        checked_tags: set[str] = set()
        for item in batch:
            sid = scenario_id_for(item.log_id, item.t_start_ns, item.t_end_ns)
            if item.provenance not in provenance_json:
                provenance_json[item.provenance] = (json.dumps(item.provenance.to_dict(), sort_keys=True),
                                                    _attribution(item.provenance))
            prov, added_by = provenance_json[item.provenance]
            if sid not in rows:
                rows[sid] = (sid, item.log_id, sources[item.log_id], int(item.t_start_ns), int(item.t_end_ns),
                             None, "{}", prov, STATUS_ACTIVE, "", now)
            for tag in item.tags:
                if tag not in checked_tags:
                    _check_tag(tag)
                    checked_tags.add(tag)
                tag_rows.setdefault((sid, tag), (sid, tag, added_by))
        # Key order turns random B-tree inserts into mostly sequential ones.
        created = _bulk_insert_ignore(conn, scenarios, [rows[k] for k in sorted(rows)])
        if tag_rows:
            _bulk_insert_ignore(conn, scenario_tags, [tag_rows[k] for k in sorted(tag_rows)])
        return created, len(batch) - created

    def scenario(self, scenario_id: str) -> Scenario:
        """A scenario by id, or by a unique id prefix of at least 6 characters."""
        with self.engine.connect() as conn:
            found = self._fetch(conn, select(scenarios).where(scenarios.c.scenario_id == scenario_id))
            if not found and len(scenario_id) >= MIN_ID_PREFIX:
                found = self._fetch(conn, select(scenarios).where(
                    scenarios.c.scenario_id.like(f"{scenario_id}%")).limit(2))
                if len(found) > 1:
                    raise BadInput(f"scenario id prefix {scenario_id!r} is ambiguous: give more characters")
        if not found:
            raise BadInput(f"no scenario {scenario_id!r} in the catalog: `andon scenarios search` lists ids")
        return found[0]

    def search(self, query: str | Query = "", limit: int | None = None, offset: int = 0) -> list[Scenario]:
        """Scenarios matching a query (see andon.scenarios.query), ordered by id; empty query = all active."""
        parsed = parse_query(query) if isinstance(query, str) else query
        stmt = select(scenarios).where(*self._conditions(parsed)).order_by(scenarios.c.scenario_id)
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return self._fetch(conn, stmt)

    def iter_search(self, query: str | Query = "", page: int = 5_000) -> Iterator[Scenario]:
        """Stream every match page by page (keyset paging), for queries over millions of scenarios."""
        parsed = parse_query(query) if isinstance(query, str) else query
        last = ""
        while True:
            stmt = (select(scenarios).where(*self._conditions(parsed), scenarios.c.scenario_id > last)
                    .order_by(scenarios.c.scenario_id).limit(page))
            with self.engine.connect() as conn:
                found = self._fetch(conn, stmt)
            yield from found
            if len(found) < page:
                return
            last = found[-1].scenario_id

    def count(self, query: str | Query = "") -> int:
        parsed = parse_query(query) if isinstance(query, str) else query
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(scenarios).where(*self._conditions(parsed))).scalar_one()

    def _conditions(self, q: Query) -> list[Any]:
        s = scenarios.c
        conds: list[Any] = []
        if q.status != "any":
            conds.append(s.status == q.status)
        for tag in q.tags_all:
            conds.append(exists().where(scenario_tags.c.scenario_id == s.scenario_id, scenario_tags.c.tag == tag))
        for tag in q.tags_none:
            conds.append(not_(exists().where(scenario_tags.c.scenario_id == s.scenario_id, scenario_tags.c.tag == tag)))
        if q.sources:
            conds.append(s.source.in_(q.sources))
        if q.not_sources:
            conds.append(s.source.not_in(q.not_sources))
        if q.logs:
            conds.append(or_(*[s.log_id.like(f"{log}%") for log in q.logs]))
        for op, value in q.qa_bounds:
            conds.append(OPS[op](s.qa_score, value))
        if q.qa_unscored:
            conds.append(s.qa_score.is_(None))
        for op, value in q.duration_bounds_s:
            conds.append(OPS[op](s.t_end_ns - s.t_start_ns, int(round(value * 1e9))))
        return conds

    def _fetch(self, conn: Connection, stmt: Any) -> list[Scenario]:
        rows = conn.execute(stmt).mappings().all()
        if not rows:
            return []
        ids = [r["scenario_id"] for r in rows]
        tags: dict[str, set[str]] = {sid: set() for sid in ids}
        for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
            chunk = ids[start:start + 900]
            for sid, tag in conn.execute(select(scenario_tags.c.scenario_id, scenario_tags.c.tag)
                                         .where(scenario_tags.c.scenario_id.in_(chunk))):
                tags[sid].add(tag)
        return [_scenario_from_row(r, tags[r["scenario_id"]]) for r in rows]

    # ----- curation -------------------------------------------------------------------------------
    def tag(self, scenario_id: str, add: Iterable[str] = (), remove: Iterable[str] = (), by: str = "curator") -> Scenario:
        add, remove = sorted(set(add)), sorted(set(remove))
        for tag in add:
            _check_tag(tag)
        sid = self.scenario(scenario_id).scenario_id
        with self.engine.begin() as conn:
            if add:
                conn.execute(_insert_ignore(conn, scenario_tags),
                             [{"scenario_id": sid, "tag": t, "added_by": by} for t in add])
            if remove:
                conn.execute(scenario_tags.delete().where(scenario_tags.c.scenario_id == sid,
                                                          scenario_tags.c.tag.in_(remove)))
        return self.scenario(sid)

    def retire(self, scenario_id: str, reason: str) -> Scenario:
        if not reason.strip():
            raise BadInput("retiring a scenario needs a reason: pass --reason TEXT")
        sid = self.scenario(scenario_id).scenario_id
        with self.engine.begin() as conn:
            conn.execute(update(scenarios).where(scenarios.c.scenario_id == sid)
                         .values(status=STATUS_RETIRED, retired_reason=reason))
        return self.scenario(sid)

    def set_qa(self, scores: dict[str, tuple[float, dict[str, Any]]], keep_overrides: bool = True) -> None:
        """Record label-QA scores (in [0, 1]) with their details, in one transaction.

        With keep_overrides, scenarios a curator has overridden keep the curator's score; the newly
        computed score is stored beside it in the override's details.
        """
        for sid, (score, _details) in scores.items():
            if not (isinstance(score, float | int) and math.isfinite(score) and 0.0 <= score <= 1.0):
                raise BadInput(f"QA score of {sid} must be a number in [0, 1], got {score!r}")
        with self.engine.begin() as conn:
            overridden: dict[str, dict[str, Any]] = {}
            if keep_overrides:
                ids = list(scores)
                for start in range(0, len(ids), 900):
                    for sid, text in conn.execute(select(scenarios.c.scenario_id, scenarios.c.qa_details)
                                                  .where(scenarios.c.scenario_id.in_(ids[start:start + 900]))):
                        previous = json.loads(text)
                        if "override" in previous:
                            overridden[sid] = previous
            for sid, (score, details) in scores.items():
                if sid in overridden:
                    kept = overridden[sid]
                    kept["override"]["computed_score"] = float(score)
                    kept["computed"] = details
                    score, details = kept["override"]["score"], kept
                conn.execute(update(scenarios).where(scenarios.c.scenario_id == sid)
                             .values(qa_score=float(score), qa_details=json.dumps(details, sort_keys=True)))

    def override_qa(self, scenario_id: str, score: float, reason: str, curator: str) -> Scenario:
        """A curator's QA score replaces the computed one; the computed score and the reason are kept.

        The override is recorded in qa_details["override"] and in the scenario's provenance note, and
        later automatic scoring keeps it (see `set_qa(..., keep_overrides=True)`).
        """
        if not reason.strip():
            raise BadInput("overriding a QA score needs a reason: pass --reason TEXT")
        current = self.scenario(scenario_id)
        details = dict(current.qa_details)
        details["override"] = {"score": score, "reason": reason, "curator": curator,
                               "computed_score": None if math.isnan(current.qa_score) else current.qa_score,
                               "at": _now()}
        self.set_qa({current.scenario_id: (score, details)}, keep_overrides=False)
        note = f"QA override by {curator}: {reason}"
        provenance = Provenance(current.provenance.kind, current.provenance.name, current.provenance.version,
                                current.provenance.curator, note)
        with self.engine.begin() as conn:
            conn.execute(update(scenarios).where(scenarios.c.scenario_id == current.scenario_id)
                         .values(provenance=json.dumps(provenance.to_dict(), sort_keys=True)))
        return self.scenario(current.scenario_id)

    # ----- statistics and export ------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        s = scenarios.c
        active = s.status == STATUS_ACTIVE
        with self.engine.connect() as conn:
            n_logs = conn.execute(select(func.count()).select_from(logs)).scalar_one()
            log_sources = dict(conn.execute(select(logs.c.source, func.count()).group_by(logs.c.source)).all())
            by_source = dict(conn.execute(select(s.source, func.count()).where(active).group_by(s.source)).all())
            by_status = dict(conn.execute(select(s.status, func.count()).group_by(s.status)).all())
            duration = conn.execute(select(func.sum(logs.c.t_end_ns - logs.c.t_start_ns))).scalar_one() or 0
            frames = conn.execute(select(func.sum(logs.c.n_frames))).scalar_one() or 0
            tag_query = select(scenario_tags.c.tag, func.count()).group_by(scenario_tags.c.tag)
            if by_status.get(STATUS_RETIRED):
                retired = select(s.scenario_id).where(s.status == STATUS_RETIRED)
                tag_query = tag_query.where(scenario_tags.c.scenario_id.not_in(retired))
            tag_counts = dict(conn.execute(tag_query).all())
            bucket = case((s.qa_score >= 1.0, 9), else_=cast(s.qa_score * 10, Integer))
            qa_hist = dict(conn.execute(select(bucket, func.count()).where(active, s.qa_score.is_not(None))
                                        .group_by(bucket)).all())
            unscored = conn.execute(select(func.count()).select_from(scenarios)
                                    .where(active, s.qa_score.is_(None))).scalar_one()
        return {
            "logs": n_logs,
            "logs_by_source": dict(sorted(log_sources.items())),
            "frames": int(frames),
            "hours": round(float(duration) / 3.6e12, 4),
            "scenarios": {"active": by_status.get(STATUS_ACTIVE, 0), "retired": by_status.get(STATUS_RETIRED, 0)},
            "scenarios_by_source": dict(sorted(by_source.items())),
            "tags": dict(sorted(tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            "qa_histogram": {f"{b / 10:.1f}-{(b + 1) / 10:.1f}": qa_hist.get(b, 0) for b in range(10)},
            "qa_unscored": unscored,
        }

    def export(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write logs.jsonl and scenarios.jsonl, sorted, canonical: the same catalog gives the same bytes."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        written = []
        with self.engine.connect() as conn:
            log_rows = conn.execute(select(logs).order_by(logs.c.log_id)).mappings().all()
            written.append(_write_jsonl(target / "logs.jsonl", (
                {**dict(r), "meta": json.loads(r["meta"]), "provenance": json.loads(r["provenance"])} for r in log_rows)))
        written.append(_write_jsonl(target / "scenarios.jsonl",
                                    (sc.to_dict() for sc in self.iter_search(Query(status="any")))))
        return written


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
    tmp.replace(path)
    return path


def _scenario_from_row(row: Any, tags: set[str]) -> Scenario:
    return Scenario(
        scenario_id=row["scenario_id"], log_id=row["log_id"], source=row["source"],
        t_start_ns=int(row["t_start_ns"]), t_end_ns=int(row["t_end_ns"]), tags=frozenset(tags),
        qa_score=float("nan") if row["qa_score"] is None else float(row["qa_score"]),
        qa_details=json.loads(row["qa_details"]), provenance=Provenance.from_dict(json.loads(row["provenance"])),
        status=row["status"], retired_reason=row["retired_reason"],
    )


def _attribution(provenance: Provenance) -> str:
    who = provenance.name + (f"@{provenance.version}" if provenance.version else "")
    return f"{provenance.kind}:{who}"


def _check_tag(tag: str) -> None:
    if not tag or any(ch.isspace() for ch in tag) or tag.startswith(("-", "+")) or ":" in tag or len(tag) > 64:
        raise BadInput(f"bad tag {tag!r}: tags are 1-64 characters with no spaces or ':' and no leading +/-")


def _bulk_insert_ignore(conn: Connection, table: Any, rows: list[tuple[Any, ...]]) -> int:
    """Insert positional rows, skipping existing keys; returns how many were really inserted.

    SQLite takes the rows straight to the driver's executemany (the compiled-statement path costs
    more than the database at a million rows); other backends go through SQLAlchemy.
    """
    if not rows:
        return 0
    if conn.dialect.name == "sqlite":
        columns = ", ".join(c.name for c in table.columns)
        marks = ", ".join("?" for _ in table.columns)
        sql = f"INSERT INTO {table.name} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        return conn.exec_driver_sql(sql, rows).rowcount
    # Drivers such as psycopg report no rowcount for executemany: count the keys RETURNING gives back.
    names = [c.name for c in table.columns]
    stmt = _insert_ignore(conn, table).returning(*table.primary_key.columns)
    return len(conn.execute(stmt, [dict(zip(names, row, strict=True)) for row in rows]).all())


def _insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT that skips rows whose key exists: duplicates and concurrent writers merge, never fail."""
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    raise BadInput(f"catalog backend {conn.dialect.name!r} is not supported: use sqlite or postgresql")


@contextmanager
def open_catalog(workspace: Workspace | str | None) -> Iterator[Catalog]:
    catalog = Catalog(workspace)
    try:
        yield catalog
    finally:
        catalog.close()

