"""Alembic environment: runs on the connection `Catalog.upgrade` hands over."""

from alembic import context
from sqlalchemy import create_engine

import preservation.catalog.access_models  # noqa: F401  (registers the access tables on Base.metadata)
import preservation.catalog.library_models  # noqa: F401  (titles, items)
import preservation.catalog.format_models  # noqa: F401  (file formats)
import preservation.catalog.version_models  # noqa: F401  (versions)
import preservation.catalog.monitoring_models  # noqa: F401  (heartbeats, probes, alerts)
import preservation.catalog.evidence_models  # noqa: F401  (merkle_nodes, checkpoints)
import preservation.catalog.sample_models  # noqa: F401  (monitoring_samples)
import preservation.catalog.chunk_models  # noqa: F401  (file_chunks)
from preservation.catalog.models import Base
from preservation.catalog.search_tables import include_object

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
