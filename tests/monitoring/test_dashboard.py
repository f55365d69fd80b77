"""The staff dashboard's series (preservation.dashboard) against the catalog, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from devtools.demo import make_sample_delivery
from preservation import dashboard, events
from preservation.audit import audit
from preservation.catalog.models import Job, Node, Replica, utcnow
from preservation.catalog.sample_models import SERIES_COVERAGE
from preservation.catalog.sample_models import MonitoringSample
from preservation.errors import InvalidRequest
from preservation.ingest import ingest
from preservation.jobs import kinds, queue
from preservation.repair import repair_replica

from ..corruption import flip_bit
from ..fixtures import make_repo, node_root

TARGET = "data/期刊/物理学报/2024/第01期/论文-002.pdf"


@pytest.fixture
def damaged_and_repaired(catalog_url, tmp_path):
    """A package preserved on three nodes, audited, one copy corrupted, found, repaired and audited again."""
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        package_id = ingest(repo, make_sample_delivery(tmp_path / "delivery", megabytes=1), "journals")["package_id"]
        audit(repo)
        flip_bit(node_root(repo, "cas-nsl") / package_id / TARGET, rng=random.Random(3))
        audit(repo, node_name="cas-nsl")
        with repo.catalog.session() as s:
            bad = s.scalar(select(Replica.id).where(Replica.state == "corrupt"))
        repair_replica(repo, bad)
        yield repo, package_id
    finally:
        repo.close()


def _from_events(repo, day, zone):
    """Per node of ``day`` in ``zone``: fixity checks, bytes read on node, findings of failed checks, repairs ok and
    failed."""
    out: dict[str, list[int]] = {}
    with repo.catalog.session() as s:
        for ev in events.iter_events(s):
            if dashboard.local_day(ev.occurred_at, ZoneInfo(zone)) != day or ev.node_name is None:
                continue
            row = out.setdefault(ev.node_name, [0, 0, 0, 0, 0])
            if ev.event_type == events.FIXITY_CHECK:
                row[0] += 1
                row[1] += ev.detail.get("bytes_read_on_node", 0)
                if ev.outcome == events.FAILURE:
                    row[2] += ev.detail["findings_total"]
            elif ev.event_type == events.REPAIR:
                row[3] += ev.outcome == events.SUCCESS
                row[4] += ev.outcome == events.FAILURE
    return out


def test_series_match_the_event_log_and_samples(damaged_and_repaired):
    repo, package_id = damaged_and_repaired
    sampled = dashboard.take_sample(repo)
    assert sampled["sampled"] is True
    board = dashboard.dashboard(repo, 30)
    assert board.zone == repo.settings.access_timezone == "Asia/Shanghai"  # the setting's default
    today = dashboard.local_day(utcnow(), ZoneInfo(board.zone))
    assert len(board.days) == 30 and board.days[-1] == today
    expected = _from_events(repo, today, board.zone)
    assert set(expected) == {n.name for n in board.nodes}
    for node in board.nodes:
        checks, read, found, ok, failed = expected[node.name]
        assert (node.audits[-1], node.bytes_verified[-1], node.findings[-1]) == (checks, read, found)
        assert (node.repairs_succeeded[-1], node.repairs_failed[-1]) == (ok, failed)
        assert node.bytes_verified[-1] > 0 and sum(node.bytes_verified[:-1]) == 0
        assert node.coverage[-1] == 1.0 and node.coverage[:-1] == [None] * 29  # all verified again; one sample
        assert node.read_budget == repo.policy.audit.read_budget_bytes_per_day
    cas = next(n for n in board.nodes if n.name == "cas-nsl")
    assert cas.findings[-1] == 1 and cas.repairs_succeeded[-1] == 1
    with repo.catalog.session() as s:
        waiting = s.scalar(select(func.count()).select_from(Job).where(Job.state.in_(dashboard.WAITING)))
    assert board.queue_depth[-1] == waiting and board.dead_jobs[-1] == 0
    assert board.queue_depth[:-1] == [None] * 29


def test_daily_samples_keep_each_days_last_coverage_and_its_largest_queue(damaged_and_repaired):
    repo, _ = damaged_and_repaired
    now = utcnow().replace(hour=12)
    yesterday = now - timedelta(days=1)
    with repo.catalog.session() as s:
        s.add_all([
            # yesterday morning: two of four copies audited, 7 jobs waiting; evening: three of four, 2 waiting, 1 dead
            MonitoringSample(sampled_at=yesterday.replace(hour=8), series="coverage", label="uni-pku", value=2,
                             total=4),
            MonitoringSample(sampled_at=yesterday.replace(hour=20), series="coverage", label="uni-pku", value=3,
                             total=4),
            MonitoringSample(sampled_at=yesterday.replace(hour=8), series="queue", label="audit", value=5, total=0),
            MonitoringSample(sampled_at=yesterday.replace(hour=8), series="queue", label="repair", value=2, total=0),
            MonitoringSample(sampled_at=yesterday.replace(hour=20), series="queue", label="audit", value=2, total=1),
        ])
    board = dashboard.dashboard(repo, 7, now=now, zone="UTC")  # samples placed on UTC days
    pku = next(n for n in board.nodes if n.name == "uni-pku")
    assert pku.coverage[-2] == 0.75
    assert board.queue_depth[-2] == 7 and board.dead_jobs[-2] == 1


def test_samples_are_throttled_and_old_ones_pruned(repo):
    now = utcnow()
    old = now - dashboard.SAMPLE_RETENTION - timedelta(days=1)
    assert dashboard.take_sample(repo, now=old)["sampled"] is True
    assert dashboard.take_sample(repo, now=old + timedelta(seconds=10))["sampled"] is False
    result = dashboard.take_sample(repo, now=now)
    assert result["sampled"] is True and result["pruned"] == result["rows"]  # the old sample had as many rows
    with repo.catalog.session() as s:
        assert s.scalar(select(func.min(MonitoringSample.sampled_at))) == now
        labels = set(s.scalars(select(MonitoringSample.label).where(MonitoringSample.series == "coverage")))
    assert labels == {"uni-pku", "cas-nsl", "inst-istic"}  # a node without copies is sampled too (0 of 0)
    with repo.catalog.session() as s:
        per_node = dict(s.execute(select(MonitoringSample.label, MonitoringSample.value)
                                  .where(MonitoringSample.series == "queue-node")).all())
    assert per_node == {"uni-pku": 0, "cas-nsl": 0, "inst-istic": 0, "": 0}  # an empty queue is 0, not a gap


def _queue_by_node_from_jobs(repo) -> dict[str, tuple[int, int]]:
    """Per node (``""``: jobs for no copy), jobs waiting or running and dead, counted in Python from each job."""
    out: dict[str, list[int]] = {}
    with repo.catalog.session() as s:
        node_of = dict(s.execute(select(Replica.id, Node.name).join(Node, Node.id == Replica.node_id)).all())
        for job in s.scalars(select(Job)):
            label = node_of.get(job.payload.get("replica_id"), "")
            row = out.setdefault(label, [0, 0])
            row[0] += job.state in dashboard.WAITING
            row[1] += job.state == "dead"
    return {k: tuple(v) for k, v in out.items()}


def test_queue_depth_is_sampled_per_node_with_jobs_for_no_copy_on_their_own(damaged_and_repaired):
    repo, package_id = damaged_and_repaired
    with repo.catalog.session() as s:
        copies = dict(s.execute(select(Node.name, Replica.id).join(Replica, Replica.node_id == Node.id)).all())
        for name in ("cas-nsl", "uni-pku"):
            kinds.enqueue_for_replica(s, kinds.SCHEDULED_AUDIT, copies[name], package_id=package_id)
        kinds.enqueue_for_replica(s, kinds.SCHEDULED_CHALLENGE, copies["cas-nsl"], package_id=package_id)
        dead = kinds.enqueue_for_replica(s, kinds.REPAIR_DAMAGED, copies["inst-istic"], package_id=package_id)
        dead.state = "dead"
        queue.enqueue(s, kinds.INGEST, {"delivery": "x"})
        queue.enqueue(s, kinds.REIDENTIFY, {"package_id": package_id}, package_id=package_id)
    expected = _queue_by_node_from_jobs(repo)
    assert expected["cas-nsl"][0] >= 2 and expected["inst-istic"][1] == 1 and expected[""][0] >= 2
    assert dashboard.take_sample(repo)["sampled"] is True
    board = dashboard.dashboard(repo, 7)
    for node in board.nodes:
        assert (node.queue_depth[-1], node.dead_jobs[-1]) == expected.get(node.name, (0, 0)), node.name
        assert node.queue_depth[:-1] == [None] * 6  # no sample before today: no number invented
    assert (board.unbound_queue_depth[-1], board.unbound_dead_jobs[-1]) == expected[""]
    assert sum(n.queue_depth[-1] for n in board.nodes) + board.unbound_queue_depth[-1] == board.queue_depth[-1]
    assert sum(n.dead_jobs[-1] for n in board.nodes) + board.unbound_dead_jobs[-1] == board.dead_jobs[-1]


def test_per_node_queue_depth_keeps_each_days_largest_and_its_last_dead_count(repo):
    now = utcnow().replace(hour=12)
    yesterday = now - timedelta(days=1)
    with repo.catalog.session() as s:
        s.add_all([
            MonitoringSample(sampled_at=yesterday.replace(hour=8), series="queue-node", label="uni-pku", value=9,
                             total=3),
            MonitoringSample(sampled_at=yesterday.replace(hour=20), series="queue-node", label="uni-pku", value=4,
                             total=1),
            MonitoringSample(sampled_at=yesterday.replace(hour=20), series="queue-node", label="", value=6, total=0),
            # a node that has since been removed: its samples are not drawn on any node still registered
            MonitoringSample(sampled_at=yesterday.replace(hour=20), series="queue-node", label="gone", value=50,
                             total=0),
        ])
    board = dashboard.dashboard(repo, 7, now=now, zone="UTC")  # samples placed on UTC days
    pku = next(n for n in board.nodes if n.name == "uni-pku")
    assert (pku.queue_depth[-2], pku.dead_jobs[-2]) == (9, 1)
    assert (board.unbound_queue_depth[-2], board.unbound_dead_jobs[-2]) == (6, 0)
    cas = next(n for n in board.nodes if n.name == "cas-nsl")
    assert cas.queue_depth == [None] * 7 and "gone" not in {n.name for n in board.nodes}


@pytest.mark.parametrize("days", [0, -1, 367, True, 3.5])
def test_a_period_out_of_range_is_refused(repo, days):
    with pytest.raises(InvalidRequest):
        dashboard.dashboard(repo, days)


def test_days_are_the_configured_zones_days(catalog_url, tmp_path):
    """17:30 UTC on 6 December is 01:30 on 7 December in Shanghai: it counts on the 7th there, on the 6th in UTC."""
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        at = datetime(2026, 12, 6, 17, 30)
        with repo.catalog.session() as s:
            events.record_event(s, events.FIXITY_CHECK, events.SUCCESS, node_name="uni-pku",
                                detail={"bytes_read_on_node": 4096}, occurred_at=at)
            events.record_event(s, events.FIXITY_CHECK, events.SUCCESS, node_name="uni-pku",
                                detail={"bytes_read_on_node": 1}, occurred_at=datetime(2026, 12, 6, 15, 59))
            s.add(MonitoringSample(sampled_at=at, series=SERIES_COVERAGE, label="uni-pku", value=1, total=4))
            s.add(MonitoringSample(sampled_at=at, series="queue", label="audit", value=3, total=0))
        now = datetime(2026, 12, 7, 3, 0)  # 11:00 on the 7th in Shanghai
        for zone, day, bytes_before in (("Asia/Shanghai", datetime(2026, 12, 7).date(), 1),
                                        ("UTC", datetime(2026, 12, 6).date(), 0)):
            board = dashboard.dashboard(repo, 7, now=now, zone=zone)
            i = board.days.index(day)
            pku = next(n for n in board.nodes if n.name == "uni-pku")
            assert (pku.audits[i], pku.bytes_verified[i]) == ((1, 4096) if zone != "UTC" else (2, 4097)), zone
            assert pku.coverage[i] == 0.25 and board.queue_depth[i] == 3, zone
            assert pku.bytes_verified[i - 1] == bytes_before, zone  # 15:59 UTC is still the 6th in Shanghai
        shanghai = dashboard.dashboard(repo, 7, now=now)  # the access_timezone setting: Asia/Shanghai by default
        assert shanghai.zone == "Asia/Shanghai" and shanghai.days[-1] == datetime(2026, 12, 7).date()
        assert next(n for n in shanghai.nodes if n.name == "uni-pku").audits[-1] == 1
    finally:
        repo.close()


def test_days_across_a_change_of_offset_follow_the_zones_rules(catalog_url, tmp_path):
    """Berlin leaves summer time on 25 October 2026 (UTC+2 → UTC+1): a period over it cannot use one offset,
    and each event still lands on its own local day (on SQLite through the per-row conversion)."""
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        with repo.catalog.session() as s:
            for at, read in ((datetime(2026, 10, 24, 22, 30), 1),    # 00:30 on the 25th (UTC+2)
                             (datetime(2026, 10, 25, 22, 30), 10),   # 23:30 on the 25th (UTC+1)
                             (datetime(2026, 10, 25, 23, 30), 100)):  # 00:30 on the 26th
                events.record_event(s, events.FIXITY_CHECK, events.SUCCESS, node_name="uni-pku",
                                    detail={"bytes_read_on_node": read}, occurred_at=at)
        now = datetime(2026, 10, 27, 12, 0)
        board = dashboard.dashboard(repo, 7, now=now, zone="Europe/Berlin")
        pku = next(n for n in board.nodes if n.name == "uni-pku")
        by_day = dict(zip((d.isoformat() for d in board.days), pku.bytes_verified))
        assert (by_day["2026-10-24"], by_day["2026-10-25"], by_day["2026-10-26"]) == (0, 11, 100)
    finally:
        repo.close()


def test_a_steady_offset_is_found_only_where_the_zone_keeps_one():
    shanghai, berlin = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")
    assert dashboard._steady_offset(shanghai, datetime(2026, 1, 1), datetime(2026, 12, 31)) == 480
    assert dashboard._steady_offset(berlin, datetime(2026, 10, 20), datetime(2026, 10, 27)) is None
    assert dashboard._steady_offset(berlin, datetime(2026, 11, 1), datetime(2026, 11, 30)) == 60
    assert dashboard._steady_offset(ZoneInfo("Asia/Kolkata"), datetime(2026, 1, 1), datetime(2026, 1, 2)) == 330
