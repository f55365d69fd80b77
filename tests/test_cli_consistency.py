"""A consistent CLI (issue 19 point 10): --json everywhere, JSON errors, one list shape, whole tables, Ctrl-C.

The walk covers every command registered in ``cli/main.py``, including those added later.
"""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from preservation import ingest as ingest_module
from preservation.cli import status as status_command
from preservation.cli.main import cli
from preservation.ingest import ingest
from preservation.jobs import queue

from .fixtures import make_repo


def _leaves(command: click.Command, path: tuple[str, ...] = ()):
    if isinstance(command, click.Group):
        ctx = click.Context(command)  # the root loads its command groups on demand (cli/main.py COMMANDS)
        for name in command.list_commands(ctx):
            yield from _leaves(command.get_command(ctx, name), (*path, name))
    else:
        yield path, command


LEAVES = list(_leaves(cli))


def _takes_arguments(command: click.Command) -> bool:
    return any(p.required for p in command.params)


def test_the_walk_sees_the_command_tree():
    paths = {" ".join(p) for p, _ in LEAVES}
    assert {"status", "package list", "package show", "events list", "node remove", "jobs show"} <= paths
    assert len(paths) > 40


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_offers_json(path):
    result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "--json" in result.output, f"`preserve {' '.join(path)}` has no --json"


@pytest.fixture
def held(run_cli, sample_delivery):
    repo = make_repo(run_cli.home)
    try:
        package_id = ingest(repo, str(sample_delivery), "journals")["package_id"]
    finally:
        repo.close()
    return package_id


def test_list_commands_print_an_object_with_a_count(run_cli, held):
    ran = []
    for path, command in LEAVES:
        if path[-1] != "list" or _takes_arguments(command):
            continue
        out = run_cli(*path, "--json")
        body = json.loads(out.output)
        assert isinstance(body, dict), f"`preserve {' '.join(path)} --json` printed a bare {type(body).__name__}"
        counts = [body[k] for k in ("count", "total") if isinstance(body.get(k), int)]
        assert counts, f"`preserve {' '.join(path)} --json` gives no count"
        lists = [k for k, v in body.items() if isinstance(v, list)]
        assert lists and ("count" not in body or len(body[lists[0]]) == body["count"]), path
        ran.append(" ".join(path))
    assert {"node list", "collection list", "package list", "events list", "jobs list", "library list"} <= set(ran)


def test_representative_commands_print_json(run_cli, held):
    job_id = run_cli("jobs", "list", "--json").json()["jobs"][0]["id"]
    for args in (("status",), ("package", "show", held[:8]), ("events", "verify"), ("jobs", "show", job_id),
                 ("audit", "--package", held), ("challenge", "--count", "1"), ("access", "requests"),
                 ("access", "grants"), ("entitlement", "list"), ("formats", "report"), ("formats", "show", held)):
        out = run_cli(*args, "--json")
        assert isinstance(json.loads(out.output), dict), args


@pytest.mark.parametrize("args, exit_code, code", [
    (("package", "show", "ffffffff"), 5, "E110"),
    (("package", "show", "ab"), 2, "E112"),
    (("jobs", "show", "0"), 2, "E112"),
    (("jobs", "show", "1"), 5, "E110"),
    (("jobs", "retry", "+1"), 2, "E112"),
    (("events", "list", "--outcome", "lost"), 2, "E112"),
    (("package", "list", "--limit", "x"), 2, "E112"),
    (("node", "set-status", "nope", "active"), 5, "E110"),
    (("node", "remove", "nope"), 5, "E110"),
    (("events", "export", "ffffffff"), 2, "E112"),
])
def test_errors_in_json_mode_are_json_with_the_same_exit_code(run_cli, args, exit_code, code):
    run_cli("init")
    plain = run_cli(*args, exit_code=exit_code)
    assert not plain.stderr.lstrip().startswith("{")
    out = run_cli(*args, "--json", exit_code=exit_code)
    error = json.loads(out.stderr)["error"]
    assert error["code"] == code and error["message"]


def test_piped_tables_are_never_cut(run_cli, tmp_path):
    run_cli("init")
    deep = tmp_path.joinpath(*[f"一个很长的目录名-{i:02}" for i in range(8)], "node-root")
    run_cli("node", "add", "n1", "--type", "cas", "--region", "beijing", "--uri", deep.as_uri(), "--create")
    out = run_cli("node", "list").output
    assert deep.as_uri() in out.replace("\n", "") and deep.as_uri() in out  # whole, on one line
    assert "…" not in out


def test_jobs_show_prints_fields_not_python_reprs(run_cli):
    repo = make_repo(run_cli.home)
    try:
        with repo.catalog.session() as s:
            job = queue.enqueue(s, "audit", {"replica_id": 7, "paths": ["data/论文.pdf"], "note": None}).id
    finally:
        repo.close()
    text = run_cli("jobs", "show", str(job)).output
    assert "replica_id=7" in text and 'paths=["data/论文.pdf"]' in text and "note=null" in text
    assert "{'" not in text and "None" not in text


def test_ctrl_c_says_what_state_was_left(run_cli, monkeypatch):
    run_cli("init")

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(status_command, "build_status", interrupted)
    out = run_cli("status", exit_code=22)
    assert "Aborted!" not in out.output and "`preserve status` stopped by Ctrl-C" in out.stderr
    assert "workers" in out.stderr
    error = json.loads(run_cli("status", "--json", exit_code=22).stderr)["error"]
    assert error["code"] == "E118" and error["params"]["command"] == "status"


def test_an_interrupted_ingest_leaves_nothing_and_says_so(run_cli, sample_delivery, monkeypatch):
    repo = make_repo(run_cli.home)
    repo.close()

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt  # after bagging into staging, before anything is registered

    monkeypatch.setattr(ingest_module, "register", interrupted)
    out = run_cli("ingest", str(sample_delivery), "--collection", "journals", exit_code=22)
    assert "nothing in the catalog and its staging copy was removed" in out.stderr
    assert run_cli("package", "list", "--json").json()["total"] == 0
    assert list((run_cli.home / "staging").iterdir()) == []
