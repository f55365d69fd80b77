pytest_plugins = ["tests.fixtures"]


# --- S3: one SeaweedFS server per run, a fresh bucket per test -----------------

import pytest  # noqa: E402

from devtools import local_s3 as seaweed  # noqa: E402
from tests.faults import summary as fault_summary  # noqa: E402
from tests.services import service_missing  # noqa: E402


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 gateway on 127.0.0.1 for the whole run (identities ``admin`` and ``reader``)."""
    weed = seaweed.find_weed()
    if weed is None:
        service_missing("SeaweedFS")
    with seaweed.running(weed, tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server):
    """The name of a fresh, empty bucket, removed after the test."""
    name = s3_server.new_bucket()
    yield name
    s3_server.remove_bucket(name)


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    """The admin's keys in AWS_* environment variables, and no AWS config files."""
    for name, value in s3_server.credentials_env(home=tmp_path).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return s3_server


# The fault suite's one line per fault class (tests/faults/summary.py). These hooks live here, not in
# tests/faults/conftest.py, because with pytest-xdist only the process that prints loads this file.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if fault_summary.PENDING:
        report = outcome.get_result()
        report.user_properties.extend((fault_summary.PROPERTY, line) for line in fault_summary.PENDING)
        fault_summary.PENDING.clear()


def pytest_runtest_logreport(report):
    fault_summary.LINES.extend(line for name, line in report.user_properties if name == fault_summary.PROPERTY)


def pytest_terminal_summary(terminalreporter):
    if fault_summary.LINES:
        terminalreporter.section("fault injection")
        for line in fault_summary.LINES:
            terminalreporter.write_line(line)


# Files holding tests marked slow are collected first, the most slow tests first: with pytest-xdist's
# --dist loadfile (make test) each file runs whole in one process, so the long ones (the crash runs, the
# OpenAPI fuzz, the wheel) start at once on different processes instead of trailing at the end on one.
def pytest_collection_modifyitems(config, items):
    slow: dict[str, int] = {}
    for item in items:
        if item.get_closest_marker("slow"):
            file = item.nodeid.split("::", 1)[0]
            slow[file] = slow.get(file, 0) + 1
    items.sort(key=lambda item: -slow.get(item.nodeid.split("::", 1)[0], 0))  # stable: order kept within
