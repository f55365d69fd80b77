"""Catalog tables: nodes, collections, packages, files, replicas, events, jobs.

Indexes follow the queries that must stay fast at tens of millions of file
rows: files by package, replicas by node/state/next audit, events by package,
jobs by state/run-after.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# the states and the time the catalog stores live in catalog.vocabulary (importable without SQLAlchemy)
from preservation.catalog.vocabulary import (  # noqa: F401 - offered here under their old names
    REPLICA_PENDING,
    REPLICA_COPYING,
    REPLICA_VERIFIED,
    REPLICA_SUSPECT,
    REPLICA_CORRUPT,
    REPLICA_MISSING,
    REPLICA_REPAIRING,
    REPLICA_STATES,
    PACKAGE_REPLICATING,
    PACKAGE_PRESERVED,
    PACKAGE_DEGRADED,
    PACKAGE_DAMAGED,
    PACKAGE_DEACCESSIONED,
    PACKAGE_STATES,
    NODE_ACTIVE,
    NODE_DRAINING,
    NODE_OFFLINE,
    NODE_STATUSES,
    ORG_TYPES,
    utcnow,
)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON}


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    org_type: Mapped[str] = mapped_column(String(16))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default=NODE_ACTIVE)
    capacity_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    read_budget_bytes_per_day: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    replicas: Mapped[list["Replica"]] = relationship(back_populates="node")


class Collection(Base):
    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    publisher: Mapped[str] = mapped_column(String(300), default="")
    licence: Mapped[str] = mapped_column(String(300), default="")
    access_mode: Mapped[str] = mapped_column(String(16), default="dark")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    packages: Mapped[list["Package"]] = relationship(back_populates="collection")


class Package(Base):
    __tablename__ = "packages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), default=PACKAGE_REPLICATING, index=True)
    source: Mapped[str] = mapped_column(Text, default="")
    source_kind: Mapped[str] = mapped_column(String(16), default="directory")
    bagit_version: Mapped[str] = mapped_column(String(8), default="1.0")
    payload_oxum: Mapped[str] = mapped_column(String(64))
    payload_files: Mapped[int] = mapped_column(BigInteger)
    payload_bytes: Mapped[int] = mapped_column(BigInteger)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    bag_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    policy: Mapped[str] = mapped_column(String(100))
    staging_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    preserved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    collection: Mapped[Collection] = relationship(back_populates="packages")
    replicas: Mapped[list["Replica"]] = relationship(back_populates="package", order_by="Replica.id")


class PackageFile(Base):
    """One file of a package's bag (payload under data/, or a tag file)."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("package_id", "path", name="uq_files_package_path"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    # byte order (collation "C") so that paths sort as storage listings do
    path: Mapped[str] = mapped_column(String(1024).with_variant(String(1024, collation="C"), "postgresql"))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    sha512: Mapped[str] = mapped_column(String(128))
    is_tag: Mapped[bool] = mapped_column(Boolean, default=False)


class Replica(Base):
    __tablename__ = "replicas"
    __table_args__ = (
        UniqueConstraint("package_id", "node_id", name="uq_replicas_package_node"),
        Index("ix_replicas_node_state", "node_id", "state"),
        Index("ix_replicas_next_audit", "next_audit_at"),
        Index("ix_replicas_last_challenge", "last_challenge_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"))
    state: Mapped[str] = mapped_column(String(16), default=REPLICA_PENDING, index=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_audit_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    next_audit_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_challenge_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    package: Mapped[Package] = relationship(back_populates="replicas")
    node: Mapped[Node] = relationship(back_populates="replicas")


class Event(Base):
    """A PREMIS-style event, chained by hash (``seq`` is the chain order)."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    agent: Mapped[str] = mapped_column(String(200))
    package_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    replica_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    node_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    policy: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """The single row that serialises event appends and pins the chain's tail."""

    __tablename__ = "event_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class Job(Base):
    """A durable unit of work claimed by workers."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_run_after", "state", "run_after"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    package_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class UnrepairableFile(Base):
    """A file of a copy that its repair found wrong and no other copy holds right (docs/operations.md).

    Written by the repair of that copy, one row per file; every row of a
    package goes when one of its copies verifies again (it then holds every
    file right) or when the file is re-supplied from outside the network.
    """

    __tablename__ = "unrepairable_files"
    __table_args__ = (UniqueConstraint("replica_id", "path", name="uq_unrepairable_files_replica_path"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    replica_id: Mapped[int] = mapped_column(ForeignKey("replicas.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024).with_variant(String(1024, collation="C"), "postgresql"))
    found_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    job_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
