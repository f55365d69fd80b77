"""The Archivematica Storage Service fixity subset: its shape, its auth, real audits — and Artefactual's own tool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from preservation.catalog.models import Event, Job

from ..corruption import add_file, delete, flip_bit
from ..fixtures import node_root
from ..services import service_missing
from .conftest import make_client
from .live import running_service
from .world import FIXITY_KEY, PAYLOAD_FILE

FIXITY_SPEC = "fixity==0.8.0"
NODES = ("uni-pku", "cas-nsl", "inst-istic")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def ss(world, **extra) -> dict:
    return {"username": "carol", "api_key": world.tokens[FIXITY_KEY], **extra}


def on_node(world, node, label, path=PAYLOAD_FILE) -> Path:
    return node_root(world.repo, node) / world.packages[label] / path


@pytest.mark.parametrize("params, status", [
    ({}, 401),
    ({"username": "carol"}, 401),
    ({"username": "carol", "api_key": "wrong"}, 401),
    ({"username": "alice", "api_key": "{carol-fixity}"}, 401),  # somebody else's key
    ({"username": "alice", "api_key": "{alice}"}, 403),  # a library user's own key: not a fixity key
    ({"username": "carol", "api_key": "{carol}"}, 403),  # a staff key never travels in a URL
])
def test_fixity_api_needs_a_staff_users_fixity_key(client, world, params, status):
    params = {k: world.tokens[v[1:-1]] if v.startswith("{") else v for k, v in params.items()}
    pid = world.packages["open"]
    for path in ("/api/v2/file/", f"/api/v2/file/{pid}/", f"/api/v2/file/{pid}/check_fixity/"):
        assert client.get(path, params=params).status_code == status, path


def test_listing_pages_carry_the_credentials(world):
    with make_client(world, fixity_page_size=4) as c:
        first = c.get("/api/v2/file/", params=ss(world)).json()
        assert first["meta"]["total_count"] == 6 and len(first["objects"]) == 4 and first["meta"]["previous"] is None
        nxt = first["meta"]["next"]
        assert nxt.startswith("/api/v2/file/?")
        query = parse_qs(urlsplit(nxt).query)
        assert query["username"] == ["carol"] and query["api_key"] == [world.tokens[FIXITY_KEY]]
        second = c.get(nxt).json()  # exactly as the tool does: server root + next
        assert second["meta"]["next"] is None and len(second["objects"]) == 2
    uuids = [o["uuid"] for o in first["objects"] + second["objects"]]
    assert sorted(uuids) == sorted(world.packages.values())
    aip = first["objects"][0]
    assert aip["package_type"] == "AIP" and aip["status"] == "UPLOADED"
    assert aip["resource_uri"] == f"/api/v2/file/{aip['uuid']}/"
    assert aip["current_location"].startswith("/api/v2/location/") and aip["current_path"] == aip["uuid"]
    assert aip["size"] > 0


def test_single_file_and_unknown_ids(client, world):
    pid = world.packages["dark"]
    assert client.get(f"/api/v2/file/{pid}/", params=ss(world)).json()["uuid"] == pid
    assert client.get(f"/api/v2/file/{pid.upper()}/", params=ss(world)).json()["uuid"] == pid
    for bad in ("0b5a4a5e-0000-4000-8000-000000000000", "not-a-uuid"):
        assert client.get(f"/api/v2/file/{bad}/", params=ss(world)).status_code == 404
        assert client.get(f"/api/v2/file/{bad}/check_fixity/", params=ss(world)).status_code == 404


def test_check_fixity_is_a_real_audit(client, world):
    pid = world.packages["dark"]
    ok = client.get(f"/api/v2/file/{pid}/check_fixity/", params=ss(world)).json()
    assert ok["success"] is True and TIMESTAMP.match(ok["timestamp"])
    assert ok["failures"] == {"files": {"missing": [], "changed": [], "untracked": []}}
    flip_bit(on_node(world, "cas-nsl", "dark"), offset=10)
    delete(on_node(world, "uni-pku", "dark", "data/index.xml"))
    add_file(node_root(world.repo, "uni-pku") / pid / "data" / "stowaway.bin")
    bad = client.get(f"/api/v2/file/{pid}/check_fixity/", params=ss(world, force_local="true")).json()
    assert bad["success"] is False
    assert bad["failures"]["files"] == {"missing": ["data/index.xml"], "changed": [PAYLOAD_FILE],
                                        "untracked": ["data/stowaway.bin"]}
    assert "cas-nsl" in bad["message"] and "uni-pku" in bad["message"] and PAYLOAD_FILE in bad["message"]
    with world.repo.catalog.session() as s:
        audits = s.scalars(select(Event).where(Event.package_id == pid, Event.event_type == "fixity check",
                                               Event.agent == "fixity-api:carol")).all()
        assert len(audits) == 6
        repairs = s.scalars(select(Job).where(Job.kind == "repair", Job.package_id == pid)).all()
        assert len(repairs) == 2


# --- Artefactual's fixity tool, installed from PyPI into its own virtual environment -------------------


@pytest.fixture(scope="session")
def fixity_tool() -> Path:
    """The `fixity` command, in a venv cached under this interpreter's prefix (.venv/cache/)."""
    # the real path: its scripts name their interpreter by the path the venv was made at
    venv = Path(sys.prefix).resolve() / "cache" / FIXITY_SPEC.replace("==", "-")
    exe = venv / "bin" / "fixity"
    marker = venv / ".installed"
    if not marker.exists():
        shutil.rmtree(venv, ignore_errors=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if made.returncode != 0:
            service_missing(f"a virtual environment for the fixity tool ({made.stderr.strip()[-300:]})")
        pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", FIXITY_SPEC], capture_output=True, text=True, timeout=600)
        if pip.returncode != 0 or not exe.exists():
            shutil.rmtree(venv, ignore_errors=True)
            service_missing(f"`pip install {FIXITY_SPEC}` (PyPI): {pip.stderr.strip()[-300:]}")
        marker.write_text(FIXITY_SPEC + "\n", encoding="utf-8")
    return exe


def run_fixity(exe: Path, url: str, world) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(STORAGE_SERVICE_URL=url + "/", STORAGE_SERVICE_USER="carol", STORAGE_SERVICE_KEY=world.tokens[FIXITY_KEY],
               NO_PROXY="127.0.0.1,localhost")
    return subprocess.run([str(exe), "scanall"], env=env, capture_output=True, text=True, timeout=300)


def test_artefactual_fixity_tool_audits_the_repository(world, fixity_tool):
    with running_service(world.repo, fixity_page_size=4) as url:  # two pages: the tool follows meta.next
        clean = run_fixity(fixity_tool, url, world)
        assert clean.returncode == 0, clean.stderr
        assert clean.stderr.count("Fixity scan succeeded for AIP") == 6
        assert "Successfully scanned 6 AIPs" in clean.stderr

        pid = world.packages["pca_2019"]
        for node in NODES:
            flip_bit(on_node(world, node, "pca_2019"), offset=1234)
        damaged = run_fixity(fixity_tool, url, world)
    assert damaged.returncode == 1, damaged.stderr
    [line] = [x for x in damaged.stderr.splitlines() if x.startswith("Fixity scan failed")]
    assert pid in line and f"changed: {PAYLOAD_FILE}" in line and "3 of 3 copies" in line
    assert damaged.stderr.count("Fixity scan succeeded for AIP") == 5
