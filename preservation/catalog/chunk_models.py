"""Chunk digests of the files: one row per payload file larger than one chunk (``preservation.chunk_digests``).

``digests`` holds every chunk's digest, ``n × 32`` bytes in chunk order: a
file of 4 GiB has one row of 128 KiB, read whole when the file is served.
The row belongs to the package that stores the file's bytes (its ``files``
row): a version that references an unchanged file serves it with the chunk
digests its earlier version recorded.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from preservation.catalog.models import Base
from preservation.catalog.version_models import PATH


class FileChunks(Base):
    """The chunk digests of the file ``path`` stored by package ``package_id``."""

    __tablename__ = "file_chunks"

    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(PATH, primary_key=True)
    chunk_bytes: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(16))
    digests: Mapped[bytes] = mapped_column(LargeBinary)
