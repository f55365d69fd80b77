"""The wheel on its own: built, installed into a fresh virtual environment outside the checkout, and run.

What the test venv sees:

* its own site-packages, holding only the wheel just built (``pip install
  --no-deps --no-index``): every module, template, migration, the default
  policy and the BagIt profile must come from there;
* after it (a ``.pth`` line, which ``site`` appends behind the venv's own
  directory), a directory of links to exactly the declared dependencies of
  ``preserve`` and theirs, taken from the development venv, so the run needs
  no network and still fails if the code imports something it does not
  declare.  The development venv's editable install of the checkout is not
  among them.

Every command runs from a temporary directory with no PYTHONPATH, and the
test checks that ``preservation`` was imported from the test venv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from preservation.settings import REPO_ROOT

SOURCES = ("pyproject.toml", "README.md", "build_hooks.py", "preservation", "storage_adapters")
NODES = (("uni-pku", "university", "beijing"), ("cas-nsl", "cas", "beijing"), ("inst-istic", "institute", "wuhan"))


def _build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the sources, so the checkout gets no build/ or egg-info from this test."""
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
                    "--wheel-dir", str(dist), str(source)], check=True, cwd=tmp_path, timeout=300)
    (wheel,) = dist.glob("preserve-*.whl")
    return wheel


def _declared_closure(wheel: Path) -> list[metadata.Distribution]:
    """The installed distributions that the wheel's Requires-Dist (no extras) pulls in, transitively."""
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        wanted = [line.split(":", 1)[1].strip() for line in z.read(name).decode().splitlines()
                  if line.startswith("Requires-Dist:")]
    seen: dict[str, metadata.Distribution] = {}
    while wanted:
        requirement = Requirement(wanted.pop())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        key = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if key in seen:
            continue
        seen[key] = metadata.distribution(requirement.name)
        wanted.extend(seen[key].requires or ())
    return list(seen.values())


def _link_dependencies(dists: list[metadata.Distribution], target: Path) -> None:
    """Link each distribution's top-level modules, packages and metadata into ``target``."""
    target.mkdir()
    for dist in dists:
        base = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or () if not str(f).startswith("..")}:
            link = target / top
            if not link.exists() and (base / top).exists():
                link.symlink_to(base / top)


def _run(venv_bin: Path, *args: str, cwd: Path, exit_code: int = 0) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PRESERVE_HOME", "VIRTUAL_ENV")}
    env["PRESERVE_NO_PROGRESS"] = "1"
    done = subprocess.run([str(venv_bin / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == exit_code, f"{' '.join(args)}: exit {done.returncode}\n{output}"
    return output


@pytest.mark.slow
def test_the_wheel_alone_runs_the_whole_tour(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"preservation/policies/default.yaml", "preservation/policies/bagit-profile.json"} <= names
    # the portal's Chinese messages, compiled by the build (build_hooks.py), beside their source
    assert {"preservation/access/locale/zh_Hans_CN/LC_MESSAGES/portal.po",
            "preservation/access/locale/zh_Hans_CN/LC_MESSAGES/portal.mo"} <= names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bin_dir = env_dir / "bin"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, cwd=tmp_path, timeout=300)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.run([str(bin_dir / "python"), "-c", purelib], check=True, capture_output=True,
                               text=True).stdout.strip())
    deps = tmp_path / "deps"
    _link_dependencies(_declared_closure(wheel), deps)
    (site / "zz-declared-dependencies.pth").write_text(f"{deps}\n", encoding="utf-8")

    work = tmp_path / "work"
    work.mkdir()
    where = _run(bin_dir, "python", "-c", "import preservation, sys; print(preservation.__file__); print(sys.path)",
                 cwd=work)
    assert where.splitlines()[0].startswith(str(site)), where
    assert str(REPO_ROOT) not in where and sysconfig.get_path("purelib") not in where, where

    home = tmp_path / "home"
    preserve = ("preserve", "--home", str(home))
    _run(bin_dir, *preserve, "init", cwd=work)
    for name, org_type, region in NODES:
        _run(bin_dir, *preserve, "node", "add", name, "--type", org_type, "--region", region,
             "--uri", (tmp_path / "nodes" / name).as_uri(), "--create", cwd=work)
    _run(bin_dir, *preserve, "collection", "add", "journals", "--title", "期刊", "--publisher", "P",
         "--licence", "L", cwd=work)
    delivery = tmp_path / "delivery"
    (delivery / "2024" / "01").mkdir(parents=True)
    (delivery / "2024" / "01" / "article.xml").write_text("<article>物理</article>\n", encoding="utf-8")
    (delivery / "2024" / "01" / "article.pdf").write_bytes(os.urandom(300_000))
    (delivery / "readme.txt").write_text("delivery\n", encoding="utf-8")
    ingested = _run(bin_dir, *preserve, "ingest", str(delivery), "--collection", "journals", "--inline", cwd=work)
    assert "state preserved" in ingested and ingested.count("re-read and verified") == 3, ingested
    package_id = re.search(r"package ([0-9a-f-]{36})", ingested).group(1)
    _run(bin_dir, *preserve, "audit", cwd=work)
    restored = tmp_path / "restored"
    _run(bin_dir, *preserve, "restore", package_id, str(restored), cwd=work)
    validated = _run(bin_dir, *preserve, "bag", "validate", str(restored), cwd=work)
    assert "valid" in validated, validated
    assert (restored / "data" / "2024" / "01" / "article.pdf").read_bytes() == (
        delivery / "2024" / "01" / "article.pdf").read_bytes()
