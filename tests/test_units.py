"""Numbers read from outside: ASCII digits only, in range, the length checked before converting."""

from __future__ import annotations

import pytest

from preservation import units
from preservation.units import MAX_INT64, parse_decimal


@pytest.mark.parametrize("text", ["²", "٣", "+3", "-3", " 3", "3 ", "3_000", "1e3", "0x10", "", "12\n",
                                  "9" * 5000, str(MAX_INT64 + 1)])
def test_parse_decimal_takes_ascii_digits_in_range_only(text):
    with pytest.raises(ValueError):
        parse_decimal(text)


def test_parse_decimal_reads_plain_numbers():
    assert [parse_decimal(t) for t in ("0", "007", str(MAX_INT64))] == [0, 7, MAX_INT64]
    assert parse_decimal("10", maximum=10) == 10
    with pytest.raises(ValueError):
        parse_decimal("11", maximum=10)


@pytest.mark.parametrize("text, value", [("500G", 500 * 10**9), ("1.5TiB", 3 * 2**39), ("1000000", 10**6),
                                         ("0", 0), ("1.5k", 1500), ("500GB", 500 * 10**9), (" 2T ", 2 * 10**12)])
def test_sizes_are_read(text, value):
    assert units.parse_size(text) == value


@pytest.mark.parametrize("text", ["-1", "+5", "１G", "٣M", "12Q", "", "B", "inf", "nan", "1e3", "1_000", "1.5.5",
                                  "99999999999P", "1." + "0" * 20])
def test_a_size_that_is_not_ascii_digits_and_a_unit_is_refused(text):
    with pytest.raises(ValueError):
        units.parse_size(text)
