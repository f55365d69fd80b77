"""Validation under hostile files: a file that hangs, explodes or crashes its process costs that file only.

Real hostile PDFs first (a decompression bomb that qpdf would hold in memory,
and one that takes minutes to decode), then test-only kinds
(``validation_hostile``) that sleep, spin, allocate, abort or exit, so that
each limit and each way of dying is proved on its own.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time

import pytest

from preservation import codes
from preservation.errors import ConfigError, InvalidRequest
from preservation.formats.validation import Validator
from tests.formats import validation_samples as samples

HOSTILE = "tests.formats.validation_hostile"


@pytest.fixture
def good_pdf(tmp_path):
    return samples.valid_pdf(tmp_path / "good.pdf")


def _run(validator: Validator, items) -> dict:
    return dict(validator.validate_many(items))


def test_a_pdf_that_explodes_in_memory_is_stopped_and_the_next_file_validated(tmp_path, good_pdf):
    bomb = samples.exploding_pdf(tmp_path / "bomb.pdf")
    with Validator(time_limit_s=60, memory_limit_bytes=256 << 20, workers=1) as validator:
        results = _run(validator, [("bomb", bomb, "pdf"), ("good", good_pdf, "pdf")])
        stats = validator.stats()
    assert results["bomb"].outcome == "limit" and results["bomb"].codes == [codes.VALIDATION_MEMORY_LIMIT]
    assert results["good"].outcome == "valid"
    assert stats["processes_started"] == 2  # the process that met the limit retired; a new one took the next file
    assert 0 < stats["idle_rss_bytes"] < stats["peak_rss_bytes"] <= 256 << 20


def test_a_pdf_that_takes_minutes_to_decode_is_stopped_by_the_time_limit(tmp_path, good_pdf):
    slow = samples.slow_pdf(tmp_path / "slow.pdf")
    with Validator(time_limit_s=1.5, memory_limit_bytes=512 << 20, workers=1) as validator:
        started = time.monotonic()
        results = _run(validator, [("slow", slow, "pdf"), ("good", good_pdf, "pdf")])
        elapsed = time.monotonic() - started
        stats = validator.stats()
    assert results["slow"].outcome == "limit" and results["slow"].codes == [codes.VALIDATION_TIME_LIMIT]
    assert results["slow"].details == {"time_limit_s": 1.5}
    assert results["good"].outcome == "valid"
    assert stats["processes_killed"] == 1 and stats["processes_started"] == 2
    assert elapsed < 30  # stopped, not left to decode its 25 GiB


@pytest.mark.parametrize("name", sorted(samples.HOSTILE_STRUCTURES))
def test_pdf_structures_built_to_make_a_parser_recurse_or_loop_are_found_invalid_in_time(tmp_path, name):
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(samples.HOSTILE_STRUCTURES[name])
    with Validator(time_limit_s=20, memory_limit_bytes=256 << 20, workers=1) as validator:
        result = validator.validate(path, "pdf")
        stats = validator.stats()
    assert result.outcome == "invalid" and set(result.codes) <= {codes.PDF_UNREADABLE, codes.PDF_DAMAGED}, result
    assert stats["processes_killed"] == 0  # qpdf's own limits answered: nothing had to be stopped


def test_a_hand_written_pdf_is_valid():
    """The writer of the hostile structures makes sound PDFs: what they are found to be is their own doing."""
    sound = samples.raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", samples.PAGES, samples.PAGE])
    with Validator(workers=1) as validator, tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(sound)
        f.flush()
        result = validator.validate(f.name, "pdf")
    assert result.outcome == "valid" and result.details["page_count"] == 1, result


@pytest.mark.parametrize("kind, outcome, code, words", [
    ("sleep", "limit", codes.VALIDATION_TIME_LIMIT, "still running after 1 s"),
    ("spin", "limit", codes.VALIDATION_TIME_LIMIT, "CPU limit"),
    ("hog", "limit", codes.VALIDATION_MEMORY_LIMIT, "more memory"),
    ("abort", "error", codes.VALIDATION_CRASHED, "killed by SIGABRT"),
    ("exit", "error", codes.VALIDATION_CRASHED, "exited with status 3"),
    ("liar", "error", codes.VALIDATION_FAILED, "nonsense"),
])
def test_each_way_a_check_can_go_wrong_costs_one_file(tmp_path, good_pdf, kind, outcome, code, words):
    bad = tmp_path / "any.bin"
    bad.write_bytes(b"\x00" * 64)
    # only the sleeper is meant to meet the wall clock (the spinner must meet the kernel's CPU limit); the
    # others get time to spare on a loaded machine, so that what stops them is what the test is about
    time_limit = 1 if kind == "sleep" else 60
    with Validator(time_limit_s=time_limit, memory_limit_bytes=256 << 20, workers=1,
                   check_modules=[HOSTILE]) as validator:
        items = [("before", good_pdf, "pdf"), ("bad", bad, kind), ("after", good_pdf, "pdf")]
        results = list(validator.validate_many(items))
        stats = validator.stats()
    assert [key for key, _ in results] == ["before", "bad", "after"]
    verdict = dict(results)
    assert verdict["bad"].outcome == outcome and verdict["bad"].codes == [code]
    assert words in verdict["bad"].findings[0][1]
    assert verdict["before"].outcome == verdict["after"].outcome == "valid"
    assert stats["processes_started"] == 2 and stats["peak_rss_bytes"] <= 256 << 20


def test_a_process_killed_from_outside_mid_file_gives_error_and_the_rest_go_on(tmp_path, good_pdf):
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"x")
    with Validator(time_limit_s=120, memory_limit_bytes=256 << 20, workers=1,
                   check_modules=[HOSTILE]) as validator:

        def kill_when_started() -> None:
            started = tmp_path / "victim.bin.started"
            deadline = time.monotonic() + 60
            while not started.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(validator.process_ids[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_when_started)
        killer.start()
        started = time.monotonic()
        results = _run(validator, [("victim", victim, "await_kill"), ("next", good_pdf, "pdf")])
        killer.join()
        assert time.monotonic() - started < 60  # not the 120 s limit: the death was seen at once
    assert results["victim"].outcome == "error" and results["victim"].codes == [codes.VALIDATION_CRASHED]
    assert "killed by SIGKILL" in results["victim"].findings[0][1]
    assert results["next"].outcome == "valid"


def test_while_one_file_hangs_the_other_process_goes_on(tmp_path):
    sleeper = tmp_path / "sleeper.bin"
    sleeper.write_bytes(b"z")
    pdfs = [samples.valid_pdf(tmp_path / f"{n}.pdf") for n in range(4)]
    with Validator(time_limit_s=5, memory_limit_bytes=256 << 20, workers=2, check_modules=[HOSTILE]) as validator:
        order = [key for key, _ in validator.validate_many(
            [("sleeper", sleeper, "sleep"), *((n, path, "pdf") for n, path in enumerate(pdfs))])]
    assert order == [0, 1, 2, 3, "sleeper"]


def test_validation_streams_with_a_bounded_number_in_flight(tmp_path):
    path = samples.valid_pdf(tmp_path / "one.pdf")
    consumed = []

    def items():
        for n in range(12):
            consumed.append(n)
            yield n, path, "pdf"

    with Validator(workers=2) as validator:
        results = validator.validate_many(items())
        first_key, _ = next(results)
        assert len(consumed) <= 3  # two in flight, at most one more taken as the first finished
        rest = [key for key, _ in results]
    assert sorted([first_key, *rest]) == list(range(12))


def test_processes_retire_after_their_quota_of_files(tmp_path):
    path = samples.valid_pdf(tmp_path / "one.pdf")
    with Validator(workers=1, files_per_process=2) as validator:
        outcomes = [v.outcome for _, v in validator.validate_many((n, path, "pdf") for n in range(5))]
        stats = validator.stats()
    assert outcomes == ["valid"] * 5
    assert stats["processes_started"] == 3 and stats["processes_killed"] == 0


def test_what_a_process_answers_is_made_safe(tmp_path):
    path = tmp_path / "loud.bin"
    path.write_bytes(b"!")
    with Validator(workers=1, check_modules=[HOSTILE]) as validator:
        result = validator.validate(path, "shouty")
    (code, message), = result.findings
    assert code == codes.VALIDATION_FAILED and len(message) == 300
    assert message.startswith("\\u0001\\u001B[31m\u202e")  # XML-safe here; escaped for terminals where shown
    assert result.details["nested"] == {"deep": "{'deeper': {'deepest': '\\x00'}}"}  # two levels kept, no more
    assert result.details["huge"] == str(2**80)


def test_closing_ends_every_process_even_mid_file(tmp_path, good_pdf):
    sleeper = tmp_path / "sleeper.bin"
    sleeper.write_bytes(b"z")
    with Validator(time_limit_s=600, workers=2, check_modules=[HOSTILE]) as validator:
        results = validator.validate_many([("sleeper", sleeper, "sleep"), ("good", good_pdf, "pdf")])
        key, _ = next(results)
        pids = validator.process_ids
        assert key == "good" and len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped, not left running for its 600 s


def test_a_process_that_cannot_start_is_a_configuration_error(tmp_path, good_pdf):
    with Validator(workers=1, check_modules=["tests.formats.no_such_module"]) as validator:
        with pytest.raises(ConfigError, match="could not start.*No module named 'tests.formats.no_such_module'"):
            list(validator.validate_many([("good", good_pdf, "pdf")]))
        assert validator.process_ids == []


def test_a_caller_that_stops_early_leaves_nothing_in_flight(tmp_path, good_pdf):
    sleeper = tmp_path / "sleeper.bin"
    sleeper.write_bytes(b"z")
    with Validator(time_limit_s=600, workers=2, check_modules=[HOSTILE]) as validator:
        for key, _ in validator.validate_many([("sleeper", sleeper, "sleep"), ("good", good_pdf, "pdf")]):
            assert key == "good"
            break
        assert len(validator.process_ids) == 1  # the sleeper's process was killed, the idle one kept
        # the sleeper's answer can never reach the next call as if it were one of its files
        assert [key for key, _ in validator.validate_many([("again", good_pdf, "pdf")])] == ["again"]


def test_a_path_with_a_nul_is_unreadable(good_pdf):
    with Validator(workers=1) as validator:
        result = validator.validate(str(good_pdf) + "\x00.pdf", "pdf")
    assert result.outcome == "error" and result.codes == [codes.VALIDATION_UNREADABLE]


def test_processes_can_start_ahead_of_the_first_file(good_pdf):
    with Validator(workers=2) as validator:
        validator.start()
        pids = validator.process_ids
        assert len(pids) == 2
        assert validator.validate(good_pdf, "pdf").outcome == "valid"
        assert validator.process_ids == pids and validator.stats()["processes_started"] == 2
    with pytest.raises(InvalidRequest):
        validator.start()  # closed


def test_a_ctrl_c_meant_for_the_parent_does_not_end_a_check(tmp_path):
    waiting = tmp_path / "waiting.bin"
    waiting.write_bytes(b"x")
    with Validator(time_limit_s=3, workers=1, check_modules=[HOSTILE]) as validator:

        def interrupt_when_started() -> None:
            started = tmp_path / "waiting.bin.started"
            deadline = time.monotonic() + 60
            while not started.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(validator.process_ids[0], signal.SIGINT)

        interrupter = threading.Thread(target=interrupt_when_started)
        interrupter.start()
        result = validator.validate(waiting, "await_kill")
        interrupter.join()
    # the process ignored SIGINT and was stopped by the limit, not reported as crashed
    assert result.outcome == "limit" and result.codes == [codes.VALIDATION_TIME_LIMIT]


def test_a_slow_caller_does_not_make_a_finished_file_late(tmp_path, good_pdf):
    """An answer that arrived while the caller dwelt on another result is read before any deadline is judged."""
    napper = tmp_path / "nap.bin"
    napper.write_bytes(b"z")
    with Validator(time_limit_s=1, workers=2, check_modules=[HOSTILE]) as validator:
        # both processes ready and their first answers read, so the deadlines below are the files' own
        assert len(list(validator.validate_many([(1, good_pdf, "pdf"), (2, good_pdf, "pdf")]))) == 2
        assert len(validator.process_ids) == 2
        results = {}
        for key, validation in validator.validate_many([("quick", good_pdf, "pdf"), ("nap", napper, "nap")]):
            results[key] = validation
            if key == "quick":
                time.sleep(2.5)  # the napper answers 0.3 s in; its deadline passes while we sleep
        stats = validator.stats()
    assert results["quick"].outcome == results["nap"].outcome == "valid"
    assert stats["processes_killed"] == 0
