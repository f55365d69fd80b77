"""The COUNTER API 5.1 (``/r51``): credentials, customers, exceptions with their HTTP status, never a 5xx."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .world import PAYLOAD_FILE


def params(world, user: str = "alice", **extra) -> dict:
    customer = {"alice": "pku", "bob": "thu", "carol": "office"}[user]
    return {"customer_id": customer, "api_key": world.tokens[user], **extra}


def download(client, world, user: str = "alice") -> None:
    url = f"/api/v1/packages/{world.packages['open']}/files/{quote(PAYLOAD_FILE)}"
    assert client.get(url, headers=world.auth(user)).status_code == 200


def month() -> str:
    from preservation.catalog.models import utcnow

    return f"{utcnow():%Y-%m}"


def test_status_needs_no_key(client):
    answer = client.get("/r51/status")
    assert answer.status_code == 200
    assert answer.json()[0]["Service_Active"] is True


def test_members_and_reports_list_what_the_key_may_read(client, world):
    assert client.get("/r51/members", params=params(world)).json() == [
        {"Customer_ID": "pku", "Institution_Name": "Peking University Library",
         "Institution_ID": {"Proprietary": ["preserve:pku"]}}]
    staff = client.get("/r51/members", params=params(world, "carol")).json()
    assert [m["Customer_ID"] for m in staff] == ["office", "pku", "thu"]
    listed = client.get("/r51/reports", params=params(world)).json()
    assert [(r["Report_ID"], r["Path"], r["Release"]) for r in listed] == [
        ("TR", "/r51/reports/tr", "5.1"), ("IR", "/r51/reports/ir", "5.1"), ("DR", "/r51/reports/dr", "5.1")]


def test_a_download_appears_in_every_report(client, world):
    download(client, world)
    paths = {"tr": ("Report_Items", 0), "dr": ("Report_Items", 0), "ir": ("Report_Items", 0, "Items", 0)}
    for key, path in paths.items():
        answer = client.get(f"/r51/reports/{key}", params=params(world, begin_date=month(), end_date=month()))
        assert answer.status_code == 200, answer.text
        entry = answer.json()
        for step in path:
            entry = entry[step]
        counts = entry["Attribute_Performance"][0]["Performance"]
        assert counts["Total_Item_Requests"] == {month(): 1}, key


def test_a_staff_key_reads_any_customer_and_a_library_key_only_its_own(client, world):
    download(client, world, "bob")
    staff = client.get("/r51/reports/tr", params=params(world, "carol", customer_id="thu", begin_date=month(),
                                                        end_date=month()))
    assert staff.status_code == 200 and staff.json()["Report_Header"]["Institution_Name"] == \
        "Tsinghua University Library"
    other = client.get("/r51/reports/tr", params=params(world, customer_id="thu", begin_date=month(),
                                                        end_date=month()))
    assert other.status_code == 403
    assert other.json() == {"Code": 2010, "Message": "Requestor is Not Authorized to Access Usage for Institution",
                            "Data": "a library's key reads only its own library's usage"}


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"customer_id": None}, 400, 1030),
    ({"api_key": None}, 400, 1030),
    ({"api_key": "not-a-key"}, 401, 2020),
    ({"api_key": "x" * 500}, 401, 2020),
    ({"requestor_id": "bob"}, 401, 2000),
    ({"customer_id": "nobody"}, 403, 2010),
    ({"begin_date": None}, 400, 1030),
    ({"begin_date": "2026-13"}, 400, 3020),
    ({"end_date": "2026-02-30"}, 400, 3020),
    ({"begin_date": "2026-05", "end_date": "2026-04"}, 400, 3020),
    ({"begin_date": "99999999999999999999-01"}, 400, 3020),
    ({"yop": "20x9"}, 400, 3020),
])
def test_bad_requests_get_the_counter_exception_and_status(client, world, change, status, code):
    query = params(world, begin_date="2026-01", end_date="2026-02")
    for name, value in change.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    answer = client.get("/r51/reports/tr", params=query)
    assert answer.status_code == status, answer.text
    assert answer.json()["Code"] == code
    assert answer.headers["content-type"].startswith("application/json")


def test_a_fixity_key_is_not_a_harvesting_key(client, world):
    from .world import FIXITY_KEY

    answer = client.get("/r51/reports/dr", params={"customer_id": "office", "api_key": world.tokens[FIXITY_KEY],
                                                    "begin_date": "2026-01", "end_date": "2026-01"})
    assert (answer.status_code, answer.json()["Code"]) == (401, 2020)


def test_a_repeated_parameter_is_refused(client, world):
    query = list(params(world, begin_date="2026-01", end_date="2026-01").items()) + [("begin_date", "2025-01")]
    answer = client.get("/r51/reports/tr", params=query)
    assert (answer.status_code, answer.json()["Code"]) == (400, 1030)


def test_unknown_parameters_and_empty_months_are_header_exceptions(client, world):
    answer = client.get("/r51/reports/tr", params=params(world, begin_date="2001-01", end_date="2001-01",
                                                          frobnicate="1", item_id="10.1/x"))
    assert answer.status_code == 200
    header = answer.json()["Report_Header"]
    assert [(e["Code"], e.get("Data")) for e in header["Exceptions"]] == \
        [(3050, "frobnicate, item_id"), (3030, "no usage from 2001-01 to 2001-01")]
    assert answer.json()["Report_Items"] == []


@pytest.mark.parametrize("value", ["<script>", "2026-01\u202e", "\u0000", "%00", "２０２６-01"])
def test_hostile_dates_are_4xx_never_5xx(client, world, value):
    answer = client.get("/r51/reports/ir", params=params(world, begin_date=value, end_date="2026-01"))
    assert 400 <= answer.status_code < 500


def test_no_counter_route_but_status_answers_without_credentials(client):
    from preservation.access.web import counter_api

    checked = 0
    for route in counter_api.router.routes:
        if route.path in ("/r51/status", "/r51/reports/{report_id}"):
            continue
        answer = client.get(route.path)
        assert (answer.status_code, answer.json()["Code"]) == (400, 1030), route.path
        checked += 1
    assert checked == 5


def test_an_unknown_report_is_a_json_404(client, world):
    answer = client.get("/r51/reports/pr", params=params(world, begin_date="2026-01", end_date="2026-01"))
    assert answer.status_code == 404 and answer.json()["Code"] == 3000


def test_the_harvesting_key_is_masked_in_the_access_log(world):
    import httpx

    from .live import running_service
    from .test_credentials_in_urls import logged_lines

    key = world.tokens["alice"]
    with running_service(world.repo) as url, logged_lines() as lines:
        answer = httpx.get(f"{url}/r51/reports/tr", params=params(world, begin_date="2026-01", end_date="2026-01"))
    assert answer.status_code == 200
    assert lines and not any(key in line for line in lines) and "api_key=***" in lines[0]
