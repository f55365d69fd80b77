"""The policy's formats section: parsed strictly, a bad value refused with the field named."""

from __future__ import annotations

import pytest
import yaml

from preservation.errors import PolicyError
from preservation.policy import load_policy
from preservation.settings import DEFAULT_POLICY


def _load(tmp_path, **formats):
    data = yaml.safe_load(DEFAULT_POLICY.read_bytes())
    data["formats"].update(formats)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_policy(path)


def test_the_default_policy_identifies_and_validates_and_refuses_nothing():
    formats = load_policy(DEFAULT_POLICY).formats
    assert formats.identify and formats.validate_files
    assert formats.unacceptable == [] and formats.refuse == []
    assert {"unidentified", "encrypted", "drm"} <= set(formats.at_risk)


def test_good_values_are_kept(tmp_path):
    formats = _load(tmp_path, unacceptable=["fmt/111", "encrypted"], withdrawn=["x-fmt/263"],
                    refuse=["FMV106", "FMT002"], time_limit_seconds=2.5, memory_limit_mib=256).formats
    assert formats.unacceptable == ["fmt/111", "encrypted"] and formats.withdrawn == ["x-fmt/263"]
    assert formats.refuse == ["FMV106", "FMT002"] and formats.time_limit_seconds == 2.5


@pytest.mark.parametrize("field, value, says", [
    ("identify", "yes", "formats.identify"),  # a string is not a boolean
    ("validate_files", 1, "formats.validate_files"),
    ("time_limit_seconds", 0, "formats.time_limit_seconds"),
    ("time_limit_seconds", -5, "formats.time_limit_seconds"),
    ("memory_limit_mib", 64, "formats.memory_limit_mib"),  # below what a validating process needs
    ("workers", 0, "formats.workers"),
    ("unacceptable", ["pdf"], "neither a PRONOM PUID"),
    ("unacceptable", ["fmt/18", "fmt/18"], "twice"),
    ("at_risk", ["fmt/18\n"], "neither a PRONOM PUID"),
    ("withdrawn", ["encrypted"], "not a PRONOM PUID"),
    ("refuse", ["A001"], "not a format finding code"),  # a code, but not of a format family
    ("refuse", ["FMV999"], "not a format finding code"),
    ("surprise", True, "formats.surprise"),  # a typo never silently ignored
])
def test_bad_values_are_refused_naming_the_field(tmp_path, field, value, says):
    with pytest.raises(PolicyError) as refused:
        _load(tmp_path, **{field: value})
    assert says in str(refused.value)
