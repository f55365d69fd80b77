"""A small consortium for the access tests: collections in every access mode, packages with years,
three libraries (two member libraries and the consortium office, whose user is staff) and API keys.

Built once per test session into a template home, then copied for each test (the node URIs in the
catalog are rewritten to the copy), so every test starts from the same state in milliseconds.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from preservation.access import accounts, entitlements
from preservation.collection import add_collection
from preservation.ingest import ingest
from preservation.repository import Repository

from ..fixtures import make_repo

PASSWORD = "correct horse battery staple"
CANARY = "TOP-SECRET-CANARY-4f1d"

# label → (collection, package name, extra bag-info)
PACKAGES = {
    "dark": ("journals", "journals-delivery", {"Year": "2020"}),
    "pca_2012": ("pca-j", "pca-j-delivery-a", {"Year": "2012"}),
    "pca_2019": ("pca-j", "pca-j-2019", {}),  # year from the name
    "pca_noyear": ("pca-j", "pca-j-misc", {}),
    "trigger": ("trig-b", "trig-b-backfile", {"Coverage-Year": "2018"}),
    "open": ("open-d", "open-data-2021", {}),
}
COLLECTIONS = [("pca-j", "Post-cancellation journals", "pca"), ("trig-b", "Triggered books", "trigger"),
               ("open-d", "Open data", "open")]
USERS = {"alice": ("pku", False), "bob": ("thu", False), "carol": ("office", True)}
FIXITY_KEY = "carol-fixity"  # world.tokens[FIXITY_KEY]: carol's fixity key, for the fixity API


@dataclass
class World:
    repo: Repository
    home: Path
    packages: dict[str, str]
    tokens: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # label → one payload path in that package

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def make_delivery(root: Path, seed: int) -> Path:
    rng = random.Random(seed)
    files = {"articles/a.txt": f"article text {seed}\n".encode() * 20, "articles/中文/b.bin": rng.randbytes(70_000),
             "index.xml": b"<index/>\n"}
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


PAYLOAD_FILE = "data/articles/中文/b.bin"


def build_template(home: Path, work: Path) -> tuple[dict[str, str], dict[str, str]]:
    repo = make_repo(home)
    try:
        for key, title, mode in COLLECTIONS:
            add_collection(repo, key, title, publisher="Publisher Ltd", access_mode=mode)
        packages = {}
        for seed, (label, (collection, name, info)) in enumerate(PACKAGES.items()):
            result = ingest(repo, make_delivery(work / label, seed), collection, name=name, bag_info=info)
            assert result["state"] == "preserved", result
            packages[label] = result["package_id"]
        for code, name in (("pku", "Peking University Library"), ("thu", "Tsinghua University Library"),
                           ("office", "Consortium Office")):
            accounts.add_library(repo, code, name, contacts=[f"access@{code}.example.org"])
        tokens = {}
        for user, (library, staff) in USERS.items():
            accounts.add_user(repo, library, user, PASSWORD, staff=staff)
            tokens[user] = accounts.create_token(repo, user, name="tests", scope="staff" if staff else "read")["token"]
        tokens[FIXITY_KEY] = accounts.create_token(repo, "carol", name="fixity tool", scope="fixity")["token"]
        entitlements.add_entitlement(repo, "pku", "pca-j", 2010, 2015)
        entitlements.add_entitlement(repo, "thu", "pca-j", 2016, 2020)
    finally:
        repo.close()
    return packages, tokens


def copy_world(template: Path, packages: dict, tokens: dict, dest: Path) -> World:
    shutil.copytree(template, dest)
    (dest.parent / "secret.txt").write_text(CANARY, encoding="utf-8")
    repo = Repository.open(dest)
    with repo.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE nodes SET uri = replace(uri, :old, :new)"),
                     {"old": template.as_uri(), "new": dest.as_uri()})
    return World(repo=repo, home=dest, packages=dict(packages), tokens=dict(tokens),
                 files={label: PAYLOAD_FILE for label in packages})
