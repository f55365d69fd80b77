"""The staff dashboard page: audit coverage, bytes verified against the read budget, findings, repairs and
queue depth, per day and per node, as server-drawn SVG charts with a table beside each (staff only)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from preservation import dashboard
from preservation.access.accounts import Principal
from preservation.access.web.auth import portal_staff, repo_of
from preservation.access.web.charts import SMALL, Chart, Number, Series, bar_chart, line_chart
from preservation.access.web.pages import render
from preservation.units import human_bytes

router = APIRouter(prefix="/staff", include_in_schema=False)

Staff = Annotated[Principal, Depends(portal_staff)]
Period = Literal[tuple(str(w) for w in dashboard.WINDOWS)]  # the windows offered: anything else is a 422


def _bytes(value: Number) -> str:
    return "no data" if value is None else human_bytes(int(value))


def _count(value: Number) -> str:
    if value is None:
        return "no data"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _share(value: Number) -> str:
    return "no sample" if value is None else f"{value:.0%}"


def charts(board: dashboard.Dashboard) -> dict[str, list[Chart]]:
    days = board.days
    span = f"the last {len(days)} days (UTC), today last"
    coverage = [line_chart(
        "coverage", "Audit coverage by node",
        f"Share of each node's copies verified within the {board.audit_interval_days:g}-day audit interval, "
        f"at the last sample of each day, over {span}.",
        days, [Series(n.name, [None if v is None else round(v, 4) for v in n.coverage]) for n in board.nodes],
        _share, y_max=1.0)]
    verified, findings, repairs, queue_by_node = [], [], [], []
    for k, n in enumerate(board.nodes):
        verified.append(bar_chart(
            f"verified-{k}", f"Bytes verified per day on {n.name}",
            f"Bytes the audits read on node {n.name} each day over {span}, against its read budget of "
            f"{human_bytes(n.read_budget)} a day (a dashed line; named in the legend when far above the bars).",
            days, [Series("bytes verified", n.bytes_verified)], _bytes, limit=n.read_budget, limit_name="read budget",
            width=SMALL))
        findings.append(bar_chart(
            f"findings-{k}", f"Findings per day on {n.name}",
            f"Findings of the failed fixity checks on node {n.name} each day over {span}.",
            days, [Series("findings", n.findings)], _count, width=SMALL))
        repairs.append(bar_chart(
            f"repairs-{k}", f"Repairs per day on {n.name}",
            f"Repairs of copies on node {n.name} that succeeded and failed each day over {span}.",
            days, [Series("succeeded", n.repairs_succeeded), Series("failed", n.repairs_failed)], _count,
            width=SMALL))
        queue_by_node.append(line_chart(
            f"queue-{k}", f"Queue depth on {n.name}",
            f"The most jobs for copies on node {n.name} waiting or running at one sample of each day, and its dead "
            f"jobs at the day's last sample, over {span}.",
            days, [Series("waiting or running", n.queue_depth), Series("dead", n.dead_jobs)], _count, width=SMALL))
    queue_by_node.append(line_chart(
        "queue-unbound", "Queue depth of jobs for no node",
        f"Jobs for no copy (an ingest, a whole package): the most waiting or running at one sample of each day, "
        f"and the dead ones at the day's last sample, over {span}.",
        days, [Series("waiting or running", board.unbound_queue_depth), Series("dead", board.unbound_dead_jobs)],
        _count, width=SMALL))
    queue = [line_chart(
        "queue", "Queue depth",
        f"The most jobs waiting or running at one sample of each day, and the dead jobs at the day's last "
        f"sample, over {span}.",
        days, [Series("waiting or running", board.queue_depth), Series("dead", board.dead_jobs)], _count)]
    return {"coverage": coverage, "verified": verified, "findings": findings, "repairs": repairs, "queue": queue,
            "queue_by_node": queue_by_node}


@router.get("/dashboard")
def dashboard_page(request: Request, principal: Staff, days: Annotated[Period, Query()] = "30") -> Response:
    board = dashboard.dashboard(repo_of(request), int(days))
    return render(request, "staff_dashboard.html", principal, board=board, charts=charts(board), days=days,
                  windows=dashboard.WINDOWS)
