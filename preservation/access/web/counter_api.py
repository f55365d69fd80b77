"""The COUNTER API (SUSHI) Release 5.1: ``/r51/status``, ``/r51/members``, ``/r51/reports`` and the TR, IR, DR.

A harvester names the institution with ``customer_id`` (a library's code) and
authenticates with ``api_key`` (a read or staff key; a library's key reads
only its own library, a staff key any).  ``requestor_id`` is optional; when
sent it must be the username that owns the key.  Every refusal is a COUNTER
Exception object with its HTTP status (400 1030/3020, 401 2000/2020, 403
2010), never an HTML page and never a 5xx; report-level conditions (3030 no
usage, 3031 not ready, 3050 unknown parameter, 3060/3062 unsupported values)
travel in the Report_Header's Exceptions, as the COUNTER API specifies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from preservation.access import counter, counter_counts
from preservation.access.accounts import Principal, authenticate_token
from preservation.access.web.auth import client_ip, repo_of
from preservation.catalog.access_models import Library
from preservation.catalog.models import utcnow
from preservation.errors import AccessRefused, AuthenticationFailed, NotFound, PreservationError, UsageReportRefused

router = APIRouter(prefix="/r51", tags=["COUNTER API 5.1"])

PLATFORM_VARIABLE = "PRESERVE_COUNTER_PLATFORM"  # the platform name reports carry (default "preserve")
CREDENTIALS = ("customer_id", "requestor_id", "api_key", "platform")
# the parameters each report understands; any other (item_id, database, author …) is named in a 3050 warning
# and ignored, as the COUNTER API asks of a parameter a server does not support
REPORT_PARAMETERS = {
    "tr": {"begin_date", "end_date", "metric_type", "data_type", "access_type", "access_method", "yop",
           "attributes_to_show", "granularity"},
    "ir": {"begin_date", "end_date", "metric_type", "data_type", "access_type", "access_method", "yop",
           "attributes_to_show", "granularity", "include_parent_details", "include_component_details"},
    "dr": {"begin_date", "end_date", "metric_type", "data_type", "access_method", "attributes_to_show",
           "granularity"},
}
FIRST_MONTH = "2000-01"


def _documented(names: Iterable[str], required: Iterable[str] = ()) -> dict:
    """The OpenAPI parameters of a route that reads its query itself (to answer COUNTER exceptions, not 422s)."""
    return {"parameters": [{"name": name, "in": "query", "required": name in required, "schema": {"type": "string"}}
                           for name in names]}


def _report_parameters(key: str) -> dict:
    return _documented(("customer_id", "requestor_id", "api_key", "platform", *sorted(REPORT_PARAMETERS[key])),
                       required=("customer_id", "begin_date", "end_date"))


def platform_name() -> str:
    return os.environ.get(PLATFORM_VARIABLE, "").strip() or counter.DEFAULT_PLATFORM


def _exception(code: int, data: str, status: int | None = None) -> JSONResponse:
    return JSONResponse(counter.counter_exception(code, data), status_code=status or counter.HTTP_STATUS[code])


def _single(request: Request) -> dict[str, str] | JSONResponse:
    """The query as one value per name; a repeated parameter is refused (which of the two would count?)."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in params:
            return _exception(1030, f"the parameter {name} is given more than once")
        params[name] = value
    return params


def _authorise(request: Request, params: dict[str, str]) -> tuple[Principal, Library] | JSONResponse:
    """The key's owner and the customer's library, or the COUNTER exception that refuses the request."""
    customer_id = params.get("customer_id", "")
    if not customer_id:
        return _exception(1030, "customer_id is required: the library's code")
    api_key = params.get("api_key", "")
    if not api_key:
        return _exception(1030, "api_key is required: an API key of the library (read scope) or of staff")
    try:
        principal = authenticate_token(repo_of(request), api_key, scopes=counter.KEY_SCOPES,
                                       client_ip=client_ip(request))
    except AuthenticationFailed:
        return _exception(2020, "the API key is unknown, expired or revoked")
    except AccessRefused as e:
        return _exception(2020, e.message)
    requestor_id = params.get("requestor_id")
    if requestor_id is not None and requestor_id != principal.username:
        return _exception(2000, "requestor_id must be the username that owns the API key (or be left out)")
    if not principal.is_staff and customer_id != principal.library_code:
        return _exception(2010, "a library's key reads only its own library's usage")
    try:
        library = counter_counts.library_by_code(repo_of(request), customer_id)
    except (NotFound, PreservationError):
        return _exception(2010, "no such customer")
    return principal, library


@router.get("/status", summary="Whether the COUNTER API can deliver reports")
def status(request: Request) -> JSONResponse:
    return JSONResponse([{"Description": f"COUNTER Release 5.1 usage reports of {platform_name()}",
                          "Service_Active": True}])


@router.get("/members", summary="The institutions this key may harvest",
            openapi_extra=_documented(CREDENTIALS, required=("customer_id",)))
def members(request: Request) -> JSONResponse:
    params = _single(request)
    if isinstance(params, JSONResponse):
        return params
    allowed = _authorise(request, params)
    if isinstance(allowed, JSONResponse):
        return allowed
    principal, library = allowed
    libraries = counter_counts.all_libraries(repo_of(request)) if principal.is_staff else [library]
    return JSONResponse([{"Customer_ID": lib.code, "Institution_Name": lib.name,
                          "Institution_ID": {"Proprietary": [f"{counter_counts.PROPRIETARY_NAMESPACE}:{lib.code}"]}}
                         for lib in libraries])


@router.get("/reports", summary="The reports this service supports",
            openapi_extra=_documented(CREDENTIALS, required=("customer_id",)))
def reports(request: Request) -> JSONResponse:
    params = _single(request)
    if isinstance(params, JSONResponse):
        return params
    allowed = _authorise(request, params)
    if isinstance(allowed, JSONResponse):
        return allowed
    last = f"{utcnow():%Y-%m}"
    return JSONResponse([{"Report_Name": name, "Report_ID": report_id, "Release": counter.RELEASE,
                          "Report_Description": description, "Path": f"/r51/reports/{key}",
                          "First_Month_Available": FIRST_MONTH, "Last_Month_Available": last}
                         for key, (report_id, name, description) in counter.REPORTS.items()])


def _report(request: Request, key: str) -> JSONResponse:
    params = _single(request)
    if isinstance(params, JSONResponse):
        return params
    allowed = _authorise(request, params)
    if isinstance(allowed, JSONResponse):
        return allowed
    _, library = allowed
    try:
        period = counter.parse_period(params.get("begin_date"), params.get("end_date"))
        report_params = {k: v for k, v in params.items() if k in REPORT_PARAMETERS[key]}
        req = counter.build_request(key, library.code, period, report_params, platform=platform_name())
    except UsageReportRefused as e:
        return _exception(e.params["counter_code"], e.params["data"], e.params["http_status"])
    unknown = sorted(k for k in params if k not in REPORT_PARAMETERS[key] and k not in CREDENTIALS)
    if unknown:
        req.exceptions.append(counter.counter_exception(3050, ", ".join(unknown)))
    return JSONResponse(counter.build_report(repo_of(request), req, created_by=platform_name()))


@router.get("/reports/tr", summary="Title Report", openapi_extra=_report_parameters("tr"))
def title_report(request: Request) -> JSONResponse:
    return _report(request, "tr")


@router.get("/reports/ir", summary="Item Report", openapi_extra=_report_parameters("ir"))
def item_report(request: Request) -> JSONResponse:
    return _report(request, "ir")


@router.get("/reports/dr", summary="Database Report", openapi_extra=_report_parameters("dr"))
def database_report(request: Request) -> JSONResponse:
    return _report(request, "dr")


@router.get("/reports/{report_id}", summary="Any other report: not supported here")
def other_report(report_id: str) -> JSONResponse:
    # COUNTER 5.1 names no exception for an unknown report path; Release 5's 3000 says it plainly
    return JSONResponse({"Code": 3000, "Message": "Report Not Supported",
                         "Data": "this service delivers tr, ir and dr (GET /r51/reports lists them)"},
                        status_code=404)
