"""The format analyser's bagging-pass side: files are identified in batches, from the bytes the pass hands it.

A small file arrives whole in one ``bytes`` chunk, which the analyser keeps
without a copy; larger ones arrive as views of a buffer the pass reuses.
Either way each file gets the answer its whole bytes give, and the files
waiting for their batch hold a bounded number of bytes.
"""

from __future__ import annotations

import random
import zipfile

import pytest

from preservation.analysis import Analysis
from preservation.formats.analyser import WAITING_BYTES, WAITING_FILES, FormatAnalyser
from preservation.findings import FindingList
from preservation.formats.identify import BUFSIZE, signatures
from preservation.policy import FormatsPolicy

from . import validation_samples as samples

IDENTIFY_ONLY = FormatsPolicy(validate_files=False)


@pytest.fixture(scope="module")
def sigs():
    return signatures()


def _feed(observer, data: bytes, how: str) -> None:
    """Hand ``data`` to ``observer`` as the bagging pass would: ``whole`` (one bytes object) or ``buffer``
    (a bytes start, then views of one reused buffer, overwritten after each chunk, as the pass reuses it)."""
    if how == "whole":
        observer.feed(data)
    else:
        first, rest = data[:1000], data[1000:]
        observer.feed(first)
        buffer = bytearray(65536)
        for at in range(0, len(rest), len(buffer)):
            piece = rest[at:at + len(buffer)]
            buffer[:len(piece)] = piece
            observer.feed(memoryview(buffer)[:len(piece)])
            buffer[:] = b"\0" * len(buffer)
    observer.close(len(data))


def _files(tmp_path) -> dict[str, bytes]:
    rng = random.Random(17)
    pdf = samples.valid_pdf(tmp_path / "valid.pdf").read_bytes()
    docx = samples.zip_bytes([("[Content_Types].xml", b"<Types/>", zipfile.ZIP_STORED)])
    return {
        "data/empty.txt": b"",
        "data/a.pdf": pdf,
        "data/padded.pdf": pdf + rng.randbytes(3 * BUFSIZE),  # the trailer far from the head
        "data/long.pdf": pdf[:200] + rng.randbytes(BUFSIZE + 500) + pdf[200:],  # one chunk bigger than BUFSIZE
        "data/really-a-zip.pdf": docx,
        "data/random.bin": rng.randbytes(4096),
        "data/article.xml": samples.JATS_GOOD.encode(),
    }


@pytest.mark.parametrize("how", ["whole", "buffer"])
def test_each_file_gets_the_answer_of_its_whole_bytes(sigs, tmp_path, how):
    files = _files(tmp_path)
    formats = FormatAnalyser(IDENTIFY_ONLY, known=sigs)
    analysis = Analysis([formats])
    for path, data in files.items():
        _feed(analysis.observe(path, len(data)), data, how)
    assert analysis.finish(str(tmp_path)).ok
    expected = {path: sigs.identify(data[:BUFSIZE], data[-BUFSIZE:], len(data), path.rsplit("/", 1)[-1])
                for path, data in files.items()}
    assert formats._identified == expected
    assert formats._sizes == {path: len(data) for path, data in files.items()}
    assert expected["data/a.pdf"].basis == "signature"  # not vacuous: the bytes decided


def test_files_wait_for_a_batch_and_what_waits_is_bounded(sigs, tmp_path):
    formats = FormatAnalyser(IDENTIFY_ONLY, known=sigs)
    rng = random.Random(3)
    for i in range(WAITING_FILES + 10):
        _feed(formats.observer(f"data/small-{i}.bin", 100), rng.randbytes(100), "whole")
    # a full batch was identified on the way; the rest wait for the next batch or finish
    assert len(formats._identified) == WAITING_FILES and len(formats._waiting.paths) == 10
    big = rng.randbytes(3 * BUFSIZE)
    for i in range(2 * WAITING_BYTES // BUFSIZE):
        _feed(formats.observer(f"data/big-{i}.bin", len(big)), big, "buffer")
        assert formats._waiting.held < WAITING_BYTES  # a head and a tail each, never more than the bound
    formats.finish(str(tmp_path), FindingList())
    assert len(formats._identified) == WAITING_FILES + 10 + 2 * WAITING_BYTES // BUFSIZE
    assert not formats._waiting.paths


def test_an_analyser_whose_observer_raises_loses_only_that_file(sigs, tmp_path, monkeypatch):
    formats = FormatAnalyser(IDENTIFY_ONLY, known=sigs)
    analysis = Analysis([formats])
    real_identify = formats._identify

    def identify(path, *args):
        if path.endswith("bad.bin"):
            raise ValueError("broke on \x1b[31mthis")
        return real_identify(path, *args)

    monkeypatch.setattr(formats, "_identify", identify)
    for path in ("data/good.bin", "data/bad.bin"):
        _feed(analysis.observe(path, 10), b"0123456789", "whole")
    failed = [f for f in analysis.finish(str(tmp_path)) if f.code == "CA001"]
    assert list(formats._identified) == ["data/good.bin"]
    assert [f.path for f in failed] == ["data/bad.bin"]
    assert "\x1b" not in failed[0].message
