"""Identifiers: every accepted form normalises to one stored value, every bad form is refused with E115."""

from __future__ import annotations

import pytest

from preservation import identifiers as ids
from preservation.errors import InvalidIdentifier, InvalidRequest


def refused(parser, value: str) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as caught:
        parser(value)
    assert caught.value.code == "E115" and caught.value.exit_code == 19
    assert isinstance(caught.value, InvalidRequest)  # 400 on HTTP, never 5xx
    return caught.value


# 物理学报 (Acta Physica Sinica): ISSN 1000-3290, CN 11-1958/O4, DOI prefix 10.7498
@pytest.mark.parametrize("given", ["1000-3290", "10003290", " 1000-3290\t", "ISSN 1000-3290", "issn:1000-3290",
                                   "１０００－３２９０", "１０００３２９０"])
def test_issn_forms_of_acta_physica_sinica(given: str) -> None:
    assert ids.parse_issn(given) == "1000-3290"


@pytest.mark.parametrize("given, stored", [("2434-561x", "2434-561X"), ("2434561X", "2434-561X"),
                                           ("0378-5955", "0378-5955"), ("1674-1056", "1674-1056")])
def test_issn_check_character_x_and_zero(given: str, stored: str) -> None:
    assert ids.parse_issn(given) == stored


@pytest.mark.parametrize("bad, reason", [
    ("1000-3291", "check digit"),  # wrong check digit
    ("2434-5610", "check digit"),  # X expected
    ("1000-329", "form"),  # too short
    ("1000-32900", "form"),  # too long
    ("1000--3290", "form"),
    ("1000 3290", "form"),
    ("X000-3290", "form"),  # X only as the check character
    ("١٠٠٠-٣٢٩٠", "ASCII"),  # Arabic-Indic digits: isdigit() says yes, ISO 3297 says no
    ("1000–3290", "ASCII"),  # en dash
    ("①000-3290", "ASCII"),  # circled digit
    ("1000-3290\x00", "XML"),
    ("", "empty"),
    ("   ", "empty"),
    ("1" * 400, "longer"),
])
def test_bad_issns_are_refused_with_the_reason(bad: str, reason: str) -> None:
    error = refused(ids.parse_issn, bad)
    assert reason in error.params["reason"] or reason in str(error)
    assert error.params["scheme"] == "issn"


def test_the_message_never_carries_raw_controls() -> None:
    error = refused(ids.parse_issn, "1000\x1b[31m-3290")
    assert "\x1b" not in str(error)


@pytest.mark.parametrize("given", ["978-0-306-40615-7", "9780306406157", "978 0 306 40615 7", "0-306-40615-2",
                                   "0306406152", "ISBN 0-306-40615-2", "ISBN-13: 978-0-306-40615-7",
                                   "９７８０３０６４０６１５７"])
def test_isbn_forms_normalise_to_isbn13(given: str) -> None:
    assert ids.parse_isbn(given) == "9780306406157"


def test_isbn10_with_x_check_digit_lower_case_accepted() -> None:
    assert ids.parse_isbn("0-8044-2957-x") == ids.parse_isbn("0-8044-2957-X") == "9780804429573"


def test_979_isbn13_is_kept() -> None:
    assert ids.parse_isbn("979-10-90636-07-1") == "9791090636071"


@pytest.mark.parametrize("bad", ["978-0-306-40615-8", "0-306-40615-3", "977-0-306-40615-6", "030640615",
                                 "97803064061570", "978--0306406157", "-9780306406157", "9780306406157-",
                                 "978030640615X", "0-306-40615-2 ", "0\n306406152", "978_0306406157", ""])
def test_bad_isbns_are_refused(bad: str) -> None:
    if bad == "0-306-40615-2 ":  # trailing space is surrounding whitespace: accepted
        assert ids.parse_isbn(bad) == "9780306406157"
        return
    refused(ids.parse_isbn, bad)


@pytest.mark.parametrize("given, stored", [("CN 11-1958/O4", "11-1958/O4"), ("11-1958/O4", "11-1958/O4"),
                                           ("cn 11-1958/o4", "11-1958/O4"), ("CN11-1958/O4", "11-1958/O4"),
                                           ("ＣＮ　１１－１９５８／Ｏ４", "11-1958/O4"),
                                           ("CN 31-1339/TN", "31-1339/TN"), ("CN 11-2127/TP", "11-2127/TP"),
                                           ("CN 11-2137/R", "11-2137/R"), ("CN 44-1125/TP3", "44-1125/TP3")])
def test_cn_serial_numbers(given: str, stored: str) -> None:
    assert ids.parse_cn(given) == stored
    assert ids.format_cn(stored) == "CN " + stored


@pytest.mark.parametrize("bad", ["CN 11-1958/04",  # zero for the letter O
                                 "CN 99-1958/O4",  # no such region
                                 "CN 11-0000/O4", "CN 11-195/O4", "CN 1-1958/O4", "CN 11-1958", "CN 11-1958/",
                                 "CN 11-1958/L1",  # no class L in the CLC
                                 "CN 11-1958/TW",  # no subclass TW
                                 "CN  11-1958/O4", "ISSN 11-1958/O4", "CN 11—1958/O4"])
def test_bad_cn_numbers_are_refused(bad: str) -> None:
    refused(ids.parse_cn, bad)


@pytest.mark.parametrize("given", ["10.7498/aps.68.20190001", "10.7498/APS.68.20190001",
                                   "https://doi.org/10.7498/aps.68.20190001", "http://dx.doi.org/10.7498/aps.68.20190001",
                                   "doi:10.7498/aps.68.20190001", "DOI: 10.7498/aps.68.20190001",
                                   "https://doi.org/10.7498%2Faps.68.20190001"])
def test_doi_forms(given: str) -> None:
    assert ids.parse_doi(given) == "10.7498/aps.68.20190001"
    assert ids.doi_prefix_of(ids.parse_doi(given)) == "10.7498"


def test_doi_suffix_keeps_its_punctuation() -> None:
    assert ids.parse_doi("10.1002/(SICI)1097-4636(199706)35:4<519::AID-JBM12>3.0.CO;2-N") == \
        "10.1002/(sici)1097-4636(199706)35:4<519::aid-jbm12>3.0.co;2-n"
    assert ids.parse_doi("10.1000.10/123456") == "10.1000.10/123456"


@pytest.mark.parametrize("bad", ["10.7498", "10.7498/", "11.7498/aps", "10.74/aps", "10.7498/aps 68",
                                 "10.7498/aps\u200b68", "10.7498/aps\x0b68", "https://doi.org/10.7498/aps%0068",
                                 "https://doi.org/10.7498/aps%1b68", "https://doi.org/10.1234/%ff", "https://doi.org/10.1234/%C3",
                                 "10.7498/" + "a" * 300, "doi:", "aps.68.20190001"])
def test_bad_dois_are_refused(bad: str) -> None:
    refused(ids.parse_doi, bad)


@pytest.mark.parametrize("given", ["10.7498", "10.7498/", "doi:10.7498", "https://doi.org/10.7498/", "１０．７４９８"])
def test_doi_prefixes(given: str) -> None:
    assert ids.parse_doi_prefix(given) == "10.7498"


@pytest.mark.parametrize("bad", ["10.7498/aps", "10.749", "10.", "7498", "10.7498a", "10.7498//"])
def test_bad_doi_prefixes_are_refused(bad: str) -> None:
    refused(ids.parse_doi_prefix, bad)


def test_publisher_title_ids_are_kept_as_given() -> None:
    assert ids.parse_publisher_id(" wlxb ") == "wlxb"
    assert ids.parse_publisher_id("物理学报-2019") == "物理学报-2019"


@pytest.mark.parametrize("bad", ["", "a\tb", "a\nb", "a\x00b", "a\u202eb", "a\x85b", "x" * 201])
def test_bad_publisher_ids_are_refused(bad: str) -> None:
    refused(ids.parse_publisher_id, bad)


def test_non_text_is_refused() -> None:
    refused(ids.parse_issn, 10003290)  # type: ignore[arg-type]


def test_parse_dispatches_by_scheme_and_refuses_unknown_schemes() -> None:
    assert ids.parse(ids.ISSN, "10003290") == "1000-3290"
    refused(lambda v: ids.parse("ismn", v), "979-0-2600-0043-8")


@pytest.mark.parametrize("text, expected", [("1000-3290", ("issn", "1000-3290")), ("CN 11-1958/O4", ("cn", "11-1958/O4")),
                                            ("0-306-40615-2", ("isbn", "9780306406157")),
                                            ("10.7498/aps.68.20190001", ("doi", "10.7498/aps.68.20190001")),
                                            ("1000-3291", None), ("物理学报", None)])
def test_recognise_for_a_search_box(text: str, expected) -> None:
    assert ids.recognise(text) == expected
