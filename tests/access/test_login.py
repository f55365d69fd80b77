"""Logging in: argon2 runs outside every catalog transaction, attempts are counted before the password is
checked (per address and per account, also under 40 concurrent guesses), and a refusal never tells why."""

from __future__ import annotations

import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update

from preservation.access import accounts, login_limits
from preservation.catalog.access_models import Library, LoginCounter
from preservation.errors import AuthenticationFailed, TooManyAttempts

from ..fixtures import make_repo
from .conftest import login, make_client
from .world import PASSWORD

CSRF_FIELD = re.compile(r'name="csrf" value="[^"]*"')


class SpyHasher:
    """The real argon2 hasher, with ``probe`` called at the start of every verification."""

    def __init__(self, probe) -> None:
        self.real = accounts._hasher
        self.probe = probe

    def verify(self, password_hash: str, password: str) -> bool:
        self.probe()
        return self.real.verify(password_hash, password)

    def __getattr__(self, name):
        return getattr(self.real, name)


def another_writer_can_lock(database: str) -> bool:
    """True when a second connection takes SQLite's write lock at once (a 50 ms busy timeout)."""
    conn = sqlite3.connect(database, timeout=0.05, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


@pytest.mark.parametrize("username, password", [("alice", PASSWORD), ("alice", "a wrong password"),
                                                ("nobody-at-all", "a wrong password")])
def test_no_catalog_transaction_is_open_while_a_password_is_verified(world, monkeypatch, username, password):
    database = world.repo.catalog.engine.url.database
    seen: list[bool] = []
    monkeypatch.setattr(accounts, "_hasher", SpyHasher(lambda: seen.append(another_writer_can_lock(database))))
    try:
        accounts.authenticate_password(world.repo, username, password, "10.0.0.1")
    except AuthenticationFailed:
        assert password != PASSWORD
    assert seen == [True]


def test_an_unknown_username_writes_nothing_to_the_catalog(world):
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            accounts.authenticate_password(world.repo, "nobody-at-all", "a wrong password", "10.0.0.1")
    with world.repo.catalog.session() as s:
        assert s.execute(select(LoginCounter)).all() == []


def test_an_unknown_username_meets_the_same_limit_as_a_real_one(world):
    """Otherwise a 429 after the fifth guess would tell which usernames exist."""
    for username in ("alice", "nobody-at-all"):
        for _ in range(5):
            with pytest.raises(AuthenticationFailed):
                accounts.authenticate_password(world.repo, username, "a wrong password", "10.0.0.1")
        with pytest.raises(TooManyAttempts):
            accounts.authenticate_password(world.repo, username, "a wrong password", "10.0.0.1")


def _flood(repo, addresses: list[str], monkeypatch) -> tuple[int, list[str]]:
    """40 wrong passwords at once for alice; returns (passwords verified, outcome of each)."""
    verified = 0
    lock = threading.Lock()
    start = threading.Barrier(len(addresses))

    def count() -> None:
        nonlocal verified
        with lock:
            verified += 1

    monkeypatch.setattr(accounts, "_hasher", SpyHasher(count))

    def attempt(address: str) -> str:
        start.wait()
        try:
            accounts.authenticate_password(repo, "alice", "a wrong password", address)
        except (AuthenticationFailed, TooManyAttempts) as e:
            return type(e).__name__
        return "logged in"

    with ThreadPoolExecutor(len(addresses)) as pool:
        outcomes = list(pool.map(attempt, addresses))
    return verified, outcomes


@pytest.fixture
def alice_repo(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url)
    accounts.add_library(repo, "pku", "PKU")
    accounts.add_user(repo, "pku", "alice", PASSWORD)
    try:
        yield repo
    finally:
        repo.close()


def test_concurrent_guesses_from_one_address_are_counted_before_checking(alice_repo, monkeypatch):
    verified, outcomes = _flood(alice_repo, ["10.0.0.1"] * 40, monkeypatch)
    assert verified == login_limits.LOGIN_MAX_FAILURES
    assert outcomes.count("AuthenticationFailed") == login_limits.LOGIN_MAX_FAILURES
    assert outcomes.count("TooManyAttempts") == 40 - login_limits.LOGIN_MAX_FAILURES


def test_concurrent_guesses_from_many_addresses_meet_the_account_limit(alice_repo, monkeypatch):
    verified, outcomes = _flood(alice_repo, [f"10.0.1.{i}" for i in range(40)], monkeypatch)
    assert verified == login_limits.LOGIN_ACCOUNT_MAX_FAILURES
    assert outcomes.count("TooManyAttempts") == 40 - login_limits.LOGIN_ACCOUNT_MAX_FAILURES
    # the account is closed for the window, from a fresh address too, before any password is checked
    with pytest.raises(TooManyAttempts, match="any address"):
        accounts.authenticate_password(alice_repo, "alice", PASSWORD, "10.0.2.1")
    assert verified == login_limits.LOGIN_ACCOUNT_MAX_FAILURES


def _answer(response) -> tuple[int, str]:
    return response.status_code, CSRF_FIELD.sub("", response.text)


def test_outside_the_librarys_ranges_right_and_wrong_passwords_get_the_same_answer(world):
    with world.repo.catalog.session() as s:
        s.execute(update(Library).where(Library.code == "pku").values(ip_ranges=["10.8.0.0/16"]))
    with make_client(world, client=("192.0.2.7", 50000)) as outside:
        right = _answer(login(outside, "alice", PASSWORD))
        wrong = _answer(login(outside, "alice", "a wrong password"))
        unknown = _answer(login(outside, "nobody-at-all", "a wrong password"))
    assert right == wrong == unknown
    assert right[0] == 401
    with make_client(world, client=("10.8.3.4", 50000)) as inside:
        assert login(inside, "alice", PASSWORD).status_code == 303
