"""The operator's path of issue 19, with real processes: a worker, the scheduler, `preserve serve`, a node agent,
an SMTP server and a webhook receiver.  Corrupt one file; see the WARNING, the incident in status, the metrics
change, the e-mail and the webhook arrive, and the repair; then kill the node agent and see it reported
unreachable in status and alerted."""

from __future__ import annotations

import json
import logging

from click.testing import CliRunner
from sqlalchemy import select

from preservation.catalog.models import Replica
from preservation.cli.main import cli

from ..access.live import running_service
from ..corruption import flip_bit
from ..processes import log_tails, start, stop, wait_until
from .conftest import write_config
from .receivers import smtp_server, webhook_receiver
from .scrape import scrape, value
from .test_alerts import alerts_yaml


def _status(home) -> dict:
    result = CliRunner().invoke(cli, ["--home", str(home), "status", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_corrupt_audit_alert_repair_then_a_killed_agent(world, preserved_in, tmp_path, caplog):
    with smtp_server() as (mailbox, smtp_port), webhook_receiver() as (hook, hook_port):
        write_config(world.home, alerts=alerts_yaml(smtp_port, hook_port))
        repo = world.reopen()
        logs = [tmp_path / "worker.log", tmp_path / "scheduler.log"]
        worker = start(world.home, "worker", "--poll", "0.2", log=logs[0])
        scheduler = start(world.home, "scheduler", "--tick", "1", log=logs[1])
        try:
            with running_service(repo) as base:
                before = scrape(f"{base}/metrics")
                assert value(before, "preserve_replicas", state="verified") == 3

                victim = next(p for p in sorted((world.node_root("uni") / preserved_in).rglob("*"))
                              if p.is_file() and "/data/" in str(p))
                flip_bit(victim)
                with caplog.at_level(logging.WARNING, logger="preserve.incidents"):
                    audit = CliRunner().invoke(cli, ["--home", str(world.home), "audit", "--package", preserved_in])
                assert audit.exit_code == 1  # a finding
                warned = [r.getMessage() for r in caplog.records if r.name == "preserve.incidents"]
                assert any("finding A002: node uni" in m and preserved_in in m for m in warned), warned

                after = scrape(f"{base}/metrics")
                assert value(after, "preserve_fixity_checks_last_day", outcome="failure") == 1

                wait_until(lambda: any("on node uni is corrupt" in s for s in mailbox.subjects()), 60,
                           what="the corruption e-mail")
                wait_until(lambda: any(p["kind"] == "copy_damaged" for p in hook.posts), 30, what="the webhook")

                def repaired():
                    with repo.catalog.session() as s:
                        states = set(s.scalars(select(Replica.state).where(Replica.package_id == preserved_in)))
                    return states == {"verified"}

                wait_until(repaired, 120, what="the repair by the worker")
                incidents = _status(world.home)["incidents"]
                assert incidents["damage_found"] >= 1 and incidents["repaired"] >= 1
                healed = scrape(f"{base}/metrics")
                assert value(healed, "preserve_repairs_last_day", outcome="success") >= 1
                assert value(healed, "preserve_replicas", state="verified") == 3
                copy_mails = [s for s in mailbox.subjects() if "on node uni is corrupt" in s]
                assert len(copy_mails) == 1  # once, though the scheduler evaluated at every tick

                world.agent.kill()
                wait_until(lambda: any("node inst is unreachable" in s for s in mailbox.subjects()), 90,
                           what="the unreachable node's e-mail")
                inst = next(n for n in _status(world.home)["nodes"] if n["name"] == "inst")
                assert inst["reachability"]["unreachable"] is True
                wait_until(lambda: any(p["kind"] == "node_unreachable" and p["detail"]["node"] == "inst"
                                       for p in hook.posts), 30, what="the unreachable node's webhook")
                down = scrape(f"{base}/metrics")
                assert value(down, "preserve_node_reachable", node="inst", status="active") == 0
        except AssertionError as e:
            raise AssertionError(f"{e}\n{log_tails(*logs, lines=40)}") from None
        finally:
            stop(worker)
            stop(scheduler)
