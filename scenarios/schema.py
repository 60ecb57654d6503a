"""Catalog tables (SQLAlchemy Core), portable between SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 1
metadata = MetaData()

logs = Table(
    "logs", metadata,
    Column("log_id", String(64), primary_key=True),
    Column("source", String(32), nullable=False, index=True),
    Column("name", String(256), nullable=False, index=True),
    Column("manifest", String(64), nullable=False),
    Column("n_frames", Integer, nullable=False),
    Column("t_start_ns", BigInteger, nullable=False),
    Column("t_end_ns", BigInteger, nullable=False),
    Column("meta", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)

scenarios = Table(
    "scenarios", metadata,
    Column("scenario_id", String(64), primary_key=True),
    Column("log_id", String(64), ForeignKey("logs.log_id"), nullable=False),
    Column("source", String(32), nullable=False),
    Column("t_start_ns", BigInteger, nullable=False),
    Column("t_end_ns", BigInteger, nullable=False),
    Column("qa_score", Float, nullable=True),
    Column("qa_details", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("retired_reason", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Index("ix_scenarios_log_time", "log_id", "t_start_ns"),
    Index("ix_scenarios_qa", "qa_score"),
    # Covers the curator's aggregates (stats by status, source, QA) without touching the wide rows.
    Index("ix_scenarios_status_source_qa", "status", "source", "qa_score"),
)

scenario_tags = Table(
    "scenario_tags", metadata,
    Column("scenario_id", String(64), ForeignKey("scenarios.scenario_id"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("added_by", String(128), nullable=False),
    Index("ix_tags_tag", "tag", "scenario_id"),
    sqlite_with_rowid=False,  # the primary key is the table: one B-tree instead of two
)

catalog_info = Table(
    "catalog_info", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
