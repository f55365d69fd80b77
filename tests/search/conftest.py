"""Fixtures of the search tests: the access tests' consortium world, with titles and items added."""

from __future__ import annotations

import pytest

from tests.access.conftest import client, world, world_template  # noqa: F401  (fixtures used here too)

from .world_items import add_library_items


@pytest.fixture
def library(world):  # noqa: F811
    """The world with titles and items in its packages (see world_items.ITEMS)."""
    return add_library_items(world)
