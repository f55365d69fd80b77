"""Run by tests/access/test_counter_clients.py in the COUNTER clients' own environment (never imported by preserve).

``harvest URL CUSTOMER API_KEY BEGIN END``: celus-nigiri's COUNTER 5.1 client
(``Sushi51Client``) harvests TR, IR and DR from a running access service.
``read FILE…``: celus-nibbler reads our tabular (TSV) reports with its
built-in COUNTER 5.1 parsers.  Both print one JSON object: per report, the
exceptions the client saw and its records as [name, metric, month, value].

The clients live in an environment of their own because their pins (click
< 8.2, lxml < 5.4, pydantic 2.10) cannot share one with preserve's tests.
"""

from __future__ import annotations

import io
import json
import sys


def harvest(url: str, customer: str, api_key: str, begin: str, end: str) -> dict:
    from celus_nigiri.client import Sushi51Client

    client = Sushi51Client(url, customer, extra_params={"api_key": api_key})
    out = {}
    for report_type in ("tr", "ir", "dr"):
        raw = io.BytesIO()
        report = client.get_report_data(report_type, begin, end, output_content=raw)
        raw.seek(0)
        header, items = report.fd_to_dicts(raw)
        records = [[record.item or record.title, record.metric, record.start.strftime("%Y-%m"), record.value]
                   for record in report.read_report(header, items)]
        out[report_type] = {
            "errors": [str(e.code) for e in report.errors],
            "warnings": [str(e.code) for e in report.warnings + report.infos],
            "release": header.get("Release"),
            "records": records,
        }
    return out


def read(paths: list[str]) -> dict:
    from celus_nibbler import eat

    out = {}
    for path in paths:
        poops = eat(path, "preserve", check_platform=False)
        records, parsers = [], []
        for poop in poops:
            if isinstance(poop, Exception):
                parsers.append(f"error: {type(poop).__name__}: {poop}")
                continue
            parsers.append(poop.parser.name)
            for record in poop.records() or []:
                records.append([record.item or record.title, record.metric, record.start.strftime("%Y-%m"),
                                record.value])
        out[path] = {"parsers": parsers, "records": records}
    return out


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "harvest":
        result = harvest(*args)
    elif command == "read":
        result = read(args)
    else:
        raise SystemExit(f"unknown command {command!r}")
    json.dump(result, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1:])
