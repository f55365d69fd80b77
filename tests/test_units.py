"""Numbers read from outside: ASCII digits only, in range, the length checked before converting."""

from __future__ import annotations

import pytest

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
