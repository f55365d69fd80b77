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
from preservation.access.web.i18n import current_zone_label
from preservation.access.web.i18n import gettext as _
from preservation.access.web.pages import render
from preservation.units import human_bytes

router = APIRouter(prefix="/staff", include_in_schema=False)

Staff = Annotated[Principal, Depends(portal_staff)]
Period = Literal[tuple(str(w) for w in dashboard.WINDOWS)]  # the windows offered: anything else is a 422


def _bytes(value: Number) -> str:
    return _("no data") if value is None else human_bytes(int(value))


def _count(value: Number) -> str:
    if value is None:
        return _("no data")
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _share(value: Number) -> str:
    return _("no sample") if value is None else f"{value:.0%}"


def charts(board: dashboard.Dashboard) -> dict[str, list[Chart]]:
    days = board.days
    span = _("the last %(days)s days (%(zone)s), today last", days=len(days), zone=current_zone_label(board.zone))
    coverage = [line_chart(
        "coverage", _("Audit coverage by node"),
        _("Share of each node's copies verified within the %(interval)s-day audit interval, at the last sample of "
          "each day, over %(span)s.", interval=format(board.audit_interval_days, "g"), span=span),
        days, [Series(n.name, [None if v is None else round(v, 4) for v in n.coverage]) for n in board.nodes],
        _share, y_max=1.0)]
    verified, findings, repairs, queue_by_node = [], [], [], []
    for k, n in enumerate(board.nodes):
        verified.append(bar_chart(
            f"verified-{k}", _("Bytes verified per day on %(node)s", node=n.name),
            _("Bytes the audits read on node %(node)s each day over %(span)s, against its read budget of %(budget)s a "
              "day (a dashed line; named in the legend when far above the bars).", node=n.name, span=span,
              budget=human_bytes(n.read_budget)),
            days, [Series(_("bytes verified"), n.bytes_verified)], _bytes, limit=n.read_budget,
            limit_name=_("read budget"), width=SMALL))
        findings.append(bar_chart(
            f"findings-{k}", _("Findings per day on %(node)s", node=n.name),
            _("Findings of the failed fixity checks on node %(node)s each day over %(span)s.", node=n.name, span=span),
            days, [Series(_("findings"), n.findings)], _count, width=SMALL))
        repairs.append(bar_chart(
            f"repairs-{k}", _("Repairs per day on %(node)s", node=n.name),
            _("Repairs of copies on node %(node)s that succeeded and failed each day over %(span)s.", node=n.name,
              span=span),
            days, [Series(_("succeeded"), n.repairs_succeeded), Series(_("failed"), n.repairs_failed)], _count,
            width=SMALL))
        queue_by_node.append(line_chart(
            f"queue-{k}", _("Queue depth on %(node)s", node=n.name),
            _("The most jobs for copies on node %(node)s waiting or running at one sample of each day, and its dead "
              "jobs at the day's last sample, over %(span)s.", node=n.name, span=span),
            days, [Series(_("waiting or running"), n.queue_depth), Series(_("dead"), n.dead_jobs)], _count,
            width=SMALL))
    queue_by_node.append(line_chart(
        "queue-unbound", _("Queue depth of jobs for no node"),
        _("Jobs for no copy (an ingest, a whole package): the most waiting or running at one sample of each day, "
          "and the dead ones at the day's last sample, over %(span)s.", span=span),
        days, [Series(_("waiting or running"), board.unbound_queue_depth),
               Series(_("dead"), board.unbound_dead_jobs)],
        _count, width=SMALL))
    queue = [line_chart(
        "queue", _("Queue depth"),
        _("The most jobs waiting or running at one sample of each day, and the dead jobs at the day's last "
          "sample, over %(span)s.", span=span),
        days, [Series(_("waiting or running"), board.queue_depth), Series(_("dead"), board.dead_jobs)], _count)]
    return {"coverage": coverage, "verified": verified, "findings": findings, "repairs": repairs, "queue": queue,
            "queue_by_node": queue_by_node}


@router.get("/dashboard")
def dashboard_page(request: Request, principal: Staff, days: Annotated[Period, Query()] = "30") -> Response:
    board = dashboard.dashboard(repo_of(request), int(days))
    return render(request, "staff_dashboard.html", principal, board=board, charts=charts(board), days=days,
                  windows=dashboard.WINDOWS, board_zone=current_zone_label(board.zone))
