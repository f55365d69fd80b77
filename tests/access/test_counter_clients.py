"""Real COUNTER clients against a running access service: celus-nigiri harvests TR, IR and DR over the COUNTER API
5.1, celus-nibbler reads our tabular reports, and both see exactly the downloads and searches this test made.

The clients pin click < 8.2, lxml < 5.4 and pydantic 2.10, which cannot share an environment with preserve's own
tests, so they are installed (once, from the ``counter-clients`` extra of pyproject.toml) into a virtual
environment of their own and run as a separate process (tests/access/counter_clients.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from preservation.access import accounts
from preservation.catalog.models import utcnow

from .live import running_service
from .test_counter import add_book
from .world import PASSWORD, PAYLOAD_FILE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("counter_clients.py")
CLIENTS_PYTHON = "PRESERVE_COUNTER_CLIENTS_PYTHON"  # an interpreter that already has the clients


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return project["project"]["optional-dependencies"]["counter-clients"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the COUNTER clients are needed in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def clients_python() -> str:
    """The Python of an environment holding celus-nigiri and celus-nibbler (made on first use, then reused)."""
    if os.environ.get(CLIENTS_PYTHON):
        return os.environ[CLIENTS_PYTHON]
    requirements = _requirements()
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    venv = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "preserve" / f"counter-clients-{digest}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True,
                           timeout=300)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements], check=True,
                           capture_output=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as e:
            detail = getattr(e, "stderr", b"") or b""
            _unavailable(f"could not install {requirements}: {e} {detail.decode(errors='replace')[-2000:]}")
        marker.write_text("\n".join(requirements), encoding="utf-8")
    return str(python)


def run_client(python: str, *args: str) -> dict:
    done = subprocess.run([python, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def totals(records: list[list]) -> dict[tuple[str, str], int]:
    """(name, metric) → count over the months."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for name, metric, _, value in records:
        out[(name, metric)] += value
    return dict(out)


def test_real_clients_harvest_and_read_exactly_the_downloads_and_searches_made(world, clients_python, run_cli, tmp_path):
    add_book(world)  # a book whose one chapter is the package's PAYLOAD_FILE
    accounts.add_user(world.repo, "pku", "dora", PASSWORD)
    dora_key = accounts.create_token(world.repo, "dora", name="tests")["token"]
    package = world.packages["open"]
    file_url = f"/api/v1/packages/{package}/files/{quote(PAYLOAD_FILE)}"
    month = f"{utcnow():%Y-%m}"
    with running_service(world.repo) as base:
        with httpx.Client(base_url=base, timeout=60) as http:
            alice = world.auth("alice")
            assert http.get(file_url, headers=alice).status_code == 200
            assert http.get(file_url, headers=alice).status_code == 200  # a double click: counted once
            assert http.get(file_url, headers={"Authorization": f"Bearer {dora_key}"}).status_code == 200
            assert http.get(f"/api/v1/packages/{package}/zip", headers=alice).status_code == 200
            # searches through the API: Searches_Federated of every database; the same one again is a double click
            for _ in range(2):
                assert http.get("/api/v1/search", params={"q": "物理"}, headers=alice).status_code == 200
            assert http.get("/api/v1/search", params={"q": "拓扑 绝缘"}, headers=alice).status_code == 200
            time.sleep(0.2)  # the zip's usage is written when its stream ends
        end = f"{utcnow():%Y-%m}"  # the month may have turned during the test: harvest both, totals are summed
        harvested = run_client(clients_python, "harvest", base, "pku", world.tokens["alice"], month, end)

    for report in ("tr", "ir", "dr"):
        assert harvested[report]["errors"] == [] and harvested[report]["release"] == "5.1", harvested[report]
    tr = totals(harvested["tr"]["records"])
    assert tr == {
        # the chapter's book: alice (one request after the double-click filter) and dora, two sessions
        ("物理学报 Acta", "Total_Item_Investigations"): 2, ("物理学报 Acta", "Total_Item_Requests"): 2,
        ("物理学报 Acta", "Unique_Item_Investigations"): 2, ("物理学报 Acta", "Unique_Item_Requests"): 2,
        ("物理学报 Acta", "Unique_Title_Investigations"): 2, ("物理学报 Acta", "Unique_Title_Requests"): 2,
        # the zip: the whole package, which has no title of its own
        ("open-data-2021", "Total_Item_Investigations"): 1, ("open-data-2021", "Total_Item_Requests"): 1,
        ("open-data-2021", "Unique_Item_Investigations"): 1, ("open-data-2021", "Unique_Item_Requests"): 1,
    }
    ir = totals(harvested["ir"]["records"])
    assert ir[("Chapter one", "Total_Item_Requests")] == 2 and ir[("Chapter one", "Unique_Item_Requests")] == 2
    assert ir[("open-data-2021", "Total_Item_Requests")] == 1
    assert not any(metric.startswith("Unique_Title") for _, metric in ir)
    dr = totals(harvested["dr"]["records"])
    assert dr[("Open data", "Total_Item_Requests")] == 3
    assert dr[("Open data", "Unique_Title_Requests")] == 2
    databases = {name for name, _ in dr} | {"中文期刊 Journals", "Post-cancellation journals", "Triggered books"}
    assert {name: count for (name, metric), count in dr.items() if metric.startswith("Searches_")} == {
        name: 2 for name in databases}  # two searches after the double-click filter, in every database
    assert {metric for _, metric in dr if metric.startswith("Searches_")} == {"Searches_Federated"}

    files = []
    for report in ("tr", "ir", "dr"):
        path = tmp_path / f"{report}.tsv"
        path.write_text(run_cli("usage", "report", "--report", report, "--library", "pku", "--begin", month,
                                "--end", end, home=world.home).output, encoding="utf-8")
        files.append(str(path))
    read = run_client(clients_python, "read", *files)
    for report, path in zip(("tr", "ir", "dr"), files):
        assert read[path]["parsers"] == [f"static.counter51.{report.upper()}.Tabular"]
        assert totals(read[path]["records"]) == totals(harvested[report]["records"]), report
