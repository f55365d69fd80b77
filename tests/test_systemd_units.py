"""config/systemd/: the units parse, are sandboxed, name real `preserve` commands with real options, and pass
`systemd-analyze verify` (with ExecStart pointed at this environment's `preserve`)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from preservation.cli.main import cli

from .processes import REPO_ROOT
from .services import service_missing

UNITS = REPO_ROOT / "config" / "systemd"
INSTALLED = "/opt/preserve/bin/preserve"
SANDBOX = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes",
           "PrivateDevices": "yes", "CapabilityBoundingSet": "", "UMask": "0077"}
EXPECTED = {"preserve-worker@.service": ["worker"], "preserve-scheduler.service": ["scheduler"],
            "preserve-serve.service": ["serve"], "preserve-node-agent.service": ["node", "serve"]}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file: each key with every value given (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None and key.strip().isidentifier(), f"{path.name}:{number}: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _command(argv: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The click command an ExecStart names, its words, and the options it passes."""
    command: click.Command = cli
    words = []
    rest = list(argv)
    while rest and not rest[0].startswith("-") and isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"`preserve {' '.join(words + [rest[0]])}` is not a command"
        command, words = sub, words + [rest.pop(0)]
    return command, words, [w.split("=", 1)[0] for w in rest if w.startswith("--")]


def test_every_unit_is_there_parses_and_is_sandboxed():
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(EXPECTED)
    for name in EXPECTED:
        unit = parse_unit(UNITS / name)
        assert set(unit) == {"Unit", "Service", "Install"}, name
        service = unit["Service"]
        for key, value in SANDBOX.items():
            assert service.get(key) == [value], (name, key)
        assert service["ReadWritePaths"] and all(p.startswith("/") for p in service["ReadWritePaths"][0].split())
        assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exec_start_names_a_real_preserve_command_with_real_options(name):
    [exec_start] = parse_unit(UNITS / name)["Service"]["ExecStart"]
    argv = shlex.split(exec_start.replace("%i", "9101"))
    assert argv[0] == INSTALLED
    command, words, options = _command(argv[1:])
    assert words == EXPECTED[name]
    known = {o for p in command.params for o in p.opts}
    assert set(options) <= known, f"{name}: unknown options {set(options) - known}"
    result = CliRunner().invoke(cli, [*words, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.output


def test_reload_sends_sighup_to_the_processes_that_reload_their_policy():
    for name in ("preserve-worker@.service", "preserve-scheduler.service"):
        assert parse_unit(UNITS / name)["Service"]["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        service_missing("systemd-analyze (apt-get install systemd)")
    preserve = Path(sys.executable).with_name("preserve")
    if not preserve.exists():
        service_missing(f"the preserve command beside {sys.executable} (pip install -e .)")
    names = []
    for path in UNITS.glob("*.service"):
        text = path.read_text(encoding="utf-8").replace(INSTALLED, str(preserve))
        (tmp_path / path.name).write_text(text, encoding="utf-8")
        names.append(path.name)
    # a template is verified as one of its instances
    (tmp_path / "preserve-worker@9101.service").write_text(
        (tmp_path / "preserve-worker@.service").read_text(encoding="utf-8"), encoding="utf-8")
    names = [n.replace("@.", "@9101.") for n in names]
    result = subprocess.run([analyze, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "preserve" in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def test_verify_would_catch_a_broken_unit(tmp_path):
    """The check above can fail: an unknown key and a missing program are reported."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        service_missing("systemd-analyze (apt-get install systemd)")
    text = (UNITS / "preserve-scheduler.service").read_text(encoding="utf-8")
    broken = text.replace("ProtectHome=yes", "ProtectHome=yes\nProtectEverything=yes")
    (tmp_path / "preserve-broken.service").write_text(broken, encoding="utf-8")
    result = subprocess.run([analyze, "verify", "--man=no", "preserve-broken.service"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "is not executable" in out and "ProtectEverything" in out
