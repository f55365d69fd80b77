"""An agent started without --allow-delete still deletes scratch objects under .preserve/tmp/ (the probes
of `preserve config check`), and only those: a key that merely looks like the prefix is refused."""

from __future__ import annotations

import pytest

from preservation.errors import AccessDenied
from preservation.layout import SCRATCH_PREFIX
from storage_adapters import exists, read_all

from .agents import ThreadedAgent


def test_scratch_objects_are_deletable_without_allow_delete_and_nothing_else(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    agent = ThreadedAgent(root, allow_delete=False).start()
    try:
        with agent.adapter(retries=0) as node:
            node.write(SCRATCH_PREFIX + "probe", b"scratch")
            node.delete(SCRATCH_PREFIX + "probe")
            assert not exists(node, SCRATCH_PREFIX + "probe")
            for key in (".preserve/tmpx/probe", ".preserve/packages/p.json", "data/tmp/probe",
                        "x" + SCRATCH_PREFIX + "probe"):
                node.write(key, b"precious")
                with pytest.raises(AccessDenied, match="--allow-delete"):
                    node.delete(key)
                assert read_all(node, key) == b"precious"
    finally:
        agent.stop()
