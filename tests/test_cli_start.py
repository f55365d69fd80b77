"""`preserve` starts fast (issue 22 point 3): command groups load on demand, and the web stack only where it serves.

What start-up costs is measured in ``bench/bench_cli_start.py`` (docs/benchmarks.md); these tests hold the
structure that makes it fast, and that every command module is still reachable.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import click
import pytest

import preservation.cli
from preservation.cli.main import COMMANDS, cli
from preservation.settings import DEFAULT_POLICY

from .fixtures import make_repo

WEB_STACK = ("fastapi", "starlette", "uvicorn", "argon2", "jinja2")
# what `preserve status` and `node list` never need: the web stack, S3 and HTTP clients, migrations (alembic and
# its mako: the schema check reads catalog.revisions), XML and PDF parsers
HEAVY = (*WEB_STACK, "boto3", "botocore", "httpx", "alembic", "mako", "lxml", "pikepdf", "fido")


def _loaded_after(code: str, *, env: dict | None = None) -> list[str]:
    """The top-level packages of WEB_STACK (and more) a fresh interpreter has imported after running ``code``."""
    probe = (f"import sys\n{code}\n"
             "import json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_entry_point_loads_no_command_and_no_web_stack():
    loaded = set(_loaded_after("import preservation.cli.main"))
    assert not loaded & {*WEB_STACK, "sqlalchemy", "rich", "fido", "pikepdf"}, loaded


def test_help_lists_every_command_without_importing_one():
    code = ("from preservation.cli.main import cli\n"
            "try:\n    cli.main(['--help'], prog_name='preserve')\nexcept SystemExit:\n    pass\n"
            "print(file=sys.stderr)\n"
            "assert not [m for m in sys.modules if m.startswith('preservation.cli.') and m not in "
            "('preservation.cli.main', 'preservation.cli.common')], 'a command module was imported'")
    loaded = set(_loaded_after(code))
    assert not loaded & {*WEB_STACK, "sqlalchemy"}, loaded


# what they do not load either once the home's settings digest is written (preservation.quick): the catalog is read
# on the stdlib driver with the SQL SQLAlchemy compiled beforehand, the settings and policy from their digest
QUICK_HEAVY = (*HEAVY, "sqlalchemy", "pydantic", "pydantic_core", "yaml", "psycopg", "cryptography")


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["node", "list"], ["node", "list", "--json"]])
def test_status_and_node_list_run_without_heavy_modules(tmp_path, args):
    home = tmp_path / "home"
    make_repo(home).close()
    code = ("from preservation.cli.main import cli\n"
            f"try:\n    cli.main({['--home', str(home), *args]!r}, prog_name='preserve')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n")
    first = set(_loaded_after(code))  # validates the settings in full and writes their digest
    assert not first & set(HEAVY), (args, first & set(HEAVY))
    loaded = set(_loaded_after(code))
    assert not loaded & set(QUICK_HEAVY), (args, loaded & set(QUICK_HEAVY))
    assert "sqlite3" in loaded  # the probe ran the command (it read the catalog)


def test_quick_commands_read_what_the_full_settings_say(tmp_path, run_cli):
    """A changed policy shows in `status` at once: the digest follows the files it was made from."""
    home = run_cli.home
    make_repo(home).close()
    assert run_cli("status", "--json").json()["policy"] == "default@1"
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("name: default", "name: faster")
                      .replace("interval_days: 90", "interval_days: 7"), encoding="utf-8")
    (home / "preserve.yaml").write_text(f"policy: '{policy}'\n", encoding="utf-8")
    report = run_cli("status", "--json").json()
    assert report["policy"] == "faster@1" and report["audit_interval_days"] == 7


def test_an_outdated_catalog_is_still_refused_without_alembic(tmp_path):
    """The schema check that no longer imports alembic still refuses a catalog behind the migrations."""
    home = tmp_path / "home"
    repo = make_repo(home)
    with repo.catalog.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    repo.close()
    code = ("from preservation.cli.main import cli\n"
            f"try:\n    cli.main({['--home', str(home), 'status', '--json']!r}, prog_name='preserve')\n"
            "except SystemExit as e:\n    print(e.code, file=sys.stderr)\n")
    probe = f"import sys\n{code}\nprint(sorted(m for m in sys.modules if m.startswith('alembic')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    error, exit_code = out.stderr.strip().splitlines()[-2:]
    assert json.loads(error)["error"]["code"] == "E202", out.stderr  # CatalogOutdated
    assert int(exit_code) != 0
    assert out.stdout.strip() == "[]"


def _module_commands() -> dict[str, list[click.Command]]:
    """Every click command defined at the top level of a module under preservation/cli, by module."""
    found: dict[str, list[click.Command]] = {}
    for info in pkgutil.iter_modules(preservation.cli.__path__, "preservation.cli."):
        module = importlib.import_module(info.name)
        found[info.name] = [v for v in vars(module).values()
                            if isinstance(v, click.Command) and getattr(v.callback, "__module__", None) == info.name]
    return found


def _subcommands(command: click.Command) -> set[int]:
    if not isinstance(command, click.Group):
        return set()
    out: set[int] = set()
    for sub in command.commands.values():
        out |= {id(sub), *_subcommands(sub)}
    return out


def test_every_command_module_is_reachable_from_the_lazy_map():
    """A command group a module defines that no group holds must be in COMMANDS (a forgotten line fails here)."""
    commands = [c for module in _module_commands().values() for c in module if c is not cli]
    held = set().union(*(_subcommands(c) for c in commands))
    top_level = {id(c): c for c in commands if id(c) not in held}
    registered = {id(c) for c in cli.load_all().values()}
    missing = sorted(c.name for i, c in top_level.items() if i not in registered)
    assert not missing, f"command groups not in preservation/cli/main.py COMMANDS: {missing}"
    assert registered <= set(top_level) | held
    assert len(top_level) >= 25


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_registered_command_has_the_name_and_short_help_it_is_listed_with(name):
    target, short_help = COMMANDS[name]
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert command.name == name and not command.hidden
    for limit in (30, 45, 60, 200):
        assert click.Command(name, help=short_help).get_short_help_str(limit) == command.get_short_help_str(limit)


def test_the_lazy_help_is_the_help_of_the_loaded_tree():
    """`preserve --help` from the map prints what click prints once every group is loaded."""
    from click.testing import CliRunner

    from preservation.cli.main import PreserveGroup

    fresh = PreserveGroup(name="preserve", lazy=COMMANDS, params=cli.params, help=cli.help)
    lazy = CliRunner().invoke(fresh, ["--help"], terminal_width=100)
    loaded = click.Group(name="preserve", commands=cli.load_all(), params=cli.params, help=cli.help)
    eager = CliRunner().invoke(loaded, ["--help"], terminal_width=100)
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.output == eager.output
    assert all(f"  {name} " in lazy.output for name in COMMANDS)


def test_an_unknown_command_is_still_a_usage_error(run_cli):
    result = run_cli("no-such-command", exit_code=2)
    assert "No such command" in result.stderr
