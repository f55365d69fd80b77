"""Scraping a /metrics endpoint and reading it with Prometheus's own text parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[str, list]:
    """Every sample of the scrape, by sample name (``preserve_http_requests_total`` …); fails on a bad scrape."""
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    """The value of the one sample ``name`` whose labels include ``labels``; 0 when there is none."""
    found = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, f"{name}{labels} is ambiguous: {found}"
    return found[0] if found else 0.0


def total(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def names(url: str) -> set[str]:
    """Every metric family and sample name the endpoint serves, including families with no sample yet."""
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    out: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        out.add(family.name)
        out.update(sample.name for sample in family.samples)
    return out
