"""The image check (Pillow), run only inside a validating process.

``Image.verify()`` checks the structure without decoding (for PNG, every
chunk's CRC); then the first frame is decoded, which finds truncated or
corrupt image data that verify does not read.  An image with more pixels than
the limit (:data:`PIXEL_LIMIT`, set by the validating process from its memory
limit) is never decoded: a decompression bomb stops at the header.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from preservation import codes
from preservation.formats.checks.base import Report, register

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, TypeError)


def prepare(pixels: int) -> None:
    """Load every Pillow plugin now, before the process limits itself, and refuse images over ``pixels`` pixels.

    Pillow imports its format plugins on first use; loaded here, no file
    pays for it and nothing is imported under the limits.  The pixel limit
    is Pillow's own bomb check, made an error.
    """
    Image.init()
    Image.MAX_IMAGE_PIXELS = pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)


@register("image")
def check_image(stream: BinaryIO, report: Report) -> None:
    try:
        with Image.open(stream) as image:
            report.details.update(image_format=image.format, width=image.width, height=image.height,
                                  mode=image.mode, frames=getattr(image, "n_frames", 1))
            image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        report.stopped(codes.IMAGE_TOO_LARGE, str(e))
        return
    except UnidentifiedImageError as e:
        report.fault(codes.IMAGE_UNIDENTIFIED, str(e))
        return
    except _DECODE_ERRORS as e:
        report.fault(codes.IMAGE_BROKEN, f"{type(e).__name__}: {e}")
        return
    stream.seek(0)
    try:
        with Image.open(stream) as image:
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        report.stopped(codes.IMAGE_TOO_LARGE, str(e))
    except _DECODE_ERRORS as e:
        report.fault(codes.IMAGE_TRUNCATED, f"{type(e).__name__}: {e}")
