"""Alerts against a real SMTP server and a real HTTP receiver: a corrupt file, found by an audit, arrives once
by e-mail and by webhook (deduplicated, also across a restart); a killed node agent is alerted as unreachable;
rate limit, daily digest, a failing channel, strict settings."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from preservation.alerts import evaluate
from preservation.audit import audit
from preservation.errors import ConfigError
from preservation.liveness import probe_nodes
from preservation.settings import load_settings

from ..corruption import flip_bit
from .conftest import write_config
from .receivers import smtp_server, webhook_receiver

TOKEN = "s3cr3t-t0ken-in-the-url"


def alerts_yaml(smtp_port: int, hook_port: int, **extra: str) -> str:
    lines = ["alerts:",
             "  email:",
             "    host: 127.0.0.1",
             f"    port: {smtp_port}",
             "    security: none",
             "    sender: preserve@example.org",
             "    recipients: [ops@example.org, 值班@example.org]",
             "  webhook:",
             f"    url: 'http://127.0.0.1:{hook_port}/hook?token={TOKEN}'",
             "    headers: {Authorization: 'Bearer header-secret-value'}"]
    lines += [f"  {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def corrupt_and_audit(world, package_id: str) -> None:
    victim = next(p for p in sorted((world.node_root("uni") / package_id).rglob("*")) if p.is_file()
                  and "/data/" in str(p))
    flip_bit(victim)
    audit(world.repo, package_id=package_id)


@pytest.fixture
def receivers():
    with smtp_server() as (mailbox, smtp_port), webhook_receiver() as (hook, hook_port):
        yield mailbox, smtp_port, hook, hook_port


def test_corruption_is_alerted_once_by_mail_and_webhook_then_an_unreachable_node(world, preserved_in, receivers,
                                                                                 caplog):
    mailbox, smtp_port, hook, hook_port = receivers
    write_config(world.home, alerts=alerts_yaml(smtp_port, hook_port))
    world.reopen()
    assert evaluate(world.repo)["open"] == 0 and mailbox.messages == [] and hook.posts == []

    corrupt_and_audit(world, preserved_in)
    first = evaluate(world.repo)
    assert first["sent"] == {"email": 3, "webhook": 3}
    # uni's only copy is no longer verified: its audit coverage fell to 0% as well
    assert sorted(p["kind"] for p in hook.posts) == ["audit_coverage", "copy_damaged", "package_at_risk"]
    copy = next(p for p in hook.posts if p["kind"] == "copy_damaged")
    assert copy["detail"]["node"] == "uni" and copy["detail"]["state"] == "corrupt"
    assert copy["detail"]["package_id"] == preserved_in
    assert hook.paths[0] == f"/hook?token={TOKEN}" and hook.headers[0]["Authorization"] == "Bearer header-secret-value"
    subjects = mailbox.subjects()
    assert any("on node uni is corrupt" in s for s in subjects) and any("is degraded" in s for s in subjects)
    assert mailbox.envelopes[0] == ("preserve@example.org", ["ops@example.org", "值班@example.org"])

    # deduplicated: the same conditions are not sent again, not even by a scheduler restarted on the catalog
    assert evaluate(world.repo)["sent"] == {"email": 0, "webhook": 0}
    world.reopen()
    assert evaluate(world.repo)["sent"] == {"email": 0, "webhook": 0}
    assert len(mailbox.messages) == 3 and len(hook.posts) == 3

    world.agent.kill()
    probe_nodes(world.repo)
    third = evaluate(world.repo)
    assert third["sent"] == {"email": 1, "webhook": 1}
    assert hook.posts[-1]["kind"] == "node_unreachable" and hook.posts[-1]["detail"]["node"] == "inst"
    assert "node inst is unreachable since" in mailbox.subjects()[-1]
    assert TOKEN not in caplog.text and "header-secret-value" not in caplog.text


def test_a_silent_worker_and_low_audit_coverage_are_alerted(world, preserved_in, receivers):
    from preservation.catalog.models import Replica, utcnow
    from preservation.liveness import HeartbeatWriter
    mailbox, smtp_port, hook, hook_port = receivers
    write_config(world.home, alerts=alerts_yaml(smtp_port, hook_port))
    world.reopen()
    HeartbeatWriter(world.repo.catalog, "worker", "vm:1:gone", interval=1, doing=dict).beat()
    with world.repo.catalog.session() as s:  # verified long before the audit interval
        for r in s.query(Replica).filter(Replica.node_id == 1):
            r.verified_at = utcnow() - timedelta(days=3650)
    result = evaluate(world.repo, now=utcnow() + timedelta(seconds=60))
    kinds = sorted(p["kind"] for p in hook.posts)
    assert kinds == ["audit_coverage", "process_silent"], (kinds, result)
    silent = next(p for p in hook.posts if p["kind"] == "process_silent")
    assert silent["detail"]["name"] == "vm:1:gone"


def test_rate_limit_holds_back_what_is_over_the_hour(world, preserved_in, receivers):
    mailbox, smtp_port, hook, hook_port = receivers
    write_config(world.home, alerts=alerts_yaml(smtp_port, hook_port, max_per_hour="1"))
    world.reopen()
    corrupt_and_audit(world, preserved_in)
    first = evaluate(world.repo)
    assert first["sent"] == {"email": 1, "webhook": 1} and first["held"] == {"email": 2, "webhook": 2}
    assert evaluate(world.repo)["sent"] == {"email": 0, "webhook": 0}  # the hour's budget is spent
    later = evaluate(world.repo, now=datetime.utcnow() + timedelta(minutes=61))
    assert later["sent"] == {"email": 1, "webhook": 1} and len(hook.posts) == 2  # one an hour


def test_daily_digest_instead_of_immediate_alerts(world, preserved_in, receivers):
    mailbox, smtp_port, hook, hook_port = receivers
    write_config(world.home, alerts=alerts_yaml(smtp_port, hook_port, immediate="false", digest="{enabled: true, hour: 0}"))
    world.reopen()
    corrupt_and_audit(world, preserved_in)
    assert evaluate(world.repo)["sent"] == {"email": 1, "webhook": 1}
    assert hook.posts[0]["digest"] is True and len(hook.posts[0]["open"]) == 3
    body = mailbox.messages[0].get_content()
    assert "3 alert(s) open" in body and "on node uni is corrupt" in body
    assert evaluate(world.repo)["sent"] == {"email": 0, "webhook": 0}  # one a day
    tomorrow = datetime.utcnow().replace(hour=0, minute=5) + timedelta(days=1)
    assert evaluate(world.repo, now=tomorrow)["sent"] == {"email": 1, "webhook": 1}


def test_a_failing_channel_is_retried_at_the_next_tick_and_never_logs_its_secrets(world, preserved_in, receivers,
                                                                                   caplog):
    mailbox, smtp_port, hook, hook_port = receivers
    write_config(world.home, alerts=alerts_yaml(smtp_port, hook_port))
    world.reopen()
    hook.status = 500
    corrupt_and_audit(world, preserved_in)
    with caplog.at_level(logging.ERROR, logger="preserve.alerts"):
        assert evaluate(world.repo)["sent"] == {"email": 3, "webhook": 0}
    assert "answered HTTP 500" in caplog.text and TOKEN not in caplog.text
    hook.status = 204
    assert evaluate(world.repo)["sent"] == {"email": 0, "webhook": 3}


@pytest.mark.parametrize("section, field", [
    ("alerts:\n  email: {host: 'smtp\\r\\nRCPT', sender: a@b.org, recipients: [o@b.org]}\n", "alerts.email.host"),
    ("alerts:\n  email: {host: smtp, sender: 'a@b.org\\nBcc: x@y.z', recipients: [o@b.org]}\n", "alerts.email.sender"),
    ("alerts:\n  email: {host: smtp, sender: a@b.org, recipients: ['o@b.org, p@b.org']}\n",
     "alerts.email.recipients"),
    ("alerts:\n  email: {host: smtp, sender: a@b.org, recipients: []}\n", "alerts.email.recipients"),
    ("alerts:\n  email: {host: smtp, port: 70000, sender: a@b.org, recipients: [o@b.org]}\n", "alerts.email.port"),
    ("alerts:\n  webhook: {url: 'ftp://user:pw-secret@h/x'}\n", "alerts.webhook.url"),
    ("alerts:\n  webhook: {url: 'http://h/x', headers: {'Bad Header': 'v'}}\n", "alerts.webhook.headers"),
    ("alerts:\n  max_per_hour: '10'\n", "alerts.max_per_hour"),
    ("alerts:\n  digest: {enabled: true, hour: 24}\n", "alerts.digest.hour"),
    ("alerts:\n  kinds: [copy_damaged, everything]\n", "alerts.kinds"),
    ("alerts:\n  smtp: {}\n", "alerts.smtp"),
])
def test_bad_alert_settings_are_refused_naming_the_field_and_never_the_secret(tmp_path, section, field):
    (tmp_path / "preserve.yaml").write_text(section, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path)
    assert field in str(e.value) and "pw-secret" not in str(e.value)
