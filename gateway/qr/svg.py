"""A QR code as a standalone SVG document, for the app to show and staff to scan.

segno draws it: error correction Q (25% of the code may be lost to glare, a cracked screen or a thumb, and the
phone still reads it) and never boosted to H, so that a given text always gives the same image; the four-module
quiet zone the QR standard requires, inside the image, on a white background of its own (a dark-mode page must
not be its background); dark modules `#000`. The `viewBox` counts modules and there is no width or height, so
the image scales to whatever box it is put in without blurring; `shape-rendering` is left to the viewer.
"""

from __future__ import annotations

import io
from typing import Final

import segno

__all__ = ["QUIET_ZONE", "qr_svg"]

QUIET_ZONE: Final = 4
"""Light modules around the code: ISO/IEC 18004's minimum for QR codes (not micro QR)."""


def qr_svg(text: str) -> str:
    """The QR code of `text` as an SVG document (no XML declaration; the SVG namespace is declared, so the text
    is a valid `.svg` file as well as inline HTML). Payment tokens are ASCII and encoded as QR byte mode.

    Raises `segno.DataOverflowError` for a text too long for any QR code (beyond about 1270 bytes at level Q)."""
    code = segno.make(text, error="q", boost_error=False, micro=False)
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        scale=1,  # one user unit per module: the viewBox is the code's size in modules
        border=QUIET_ZONE,
        dark="#000",
        light="#fff",
        xmldecl=False,
        svgns=True,
        omitsize=True,  # no width/height: scalable
        svgclass="payment-qr",
        lineclass=None,
        nl=False,
        encoding="utf-8",
    )
    return out.getvalue().decode("utf-8")
