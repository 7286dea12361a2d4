"""The QR code's SVG, decoded as a scanner would: resvg rasterises the SVG text itself (no other rendering of the
code is involved), Pillow reads the PNG, ZXing finds and decodes the QR code in the pixels."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from typing import Final

import pytest
import resvg_py
import segno
import zxingcpp
from PIL import Image

from gateway.qr import MAX_ORDER_ID_LENGTH, QUIET_ZONE, QrSigner, qr_svg

KEY: Final = "mN3bV6cX9zL2kJ5hG8fD1sA4pO7iU0yTrE"
SVG_NS: Final = "{http://www.w3.org/2000/svg}"
SIGNER: Final = QrSigner([KEY])
TOKENS: Final = {
    "short": SIGNER.sign("1"),
    "typical": SIGNER.sign("ord_1PZk3q2eZvKYlo2C"),
    "accented": SIGNER.sign("Commande n° 42 / Hélène & Zoë"),
    "longest": SIGNER.sign("\U0001d11e" * MAX_ORDER_ID_LENGTH),  # the longest token sign() makes
}


def modules(svg: str) -> int:
    """The code's side in modules, quiet zone included, from the viewBox."""
    root = ET.fromstring(svg)
    match = re.fullmatch(r"0 0 (\d+) (\d+)", root.get("viewBox", ""))
    assert match is not None, root.attrib
    assert match.group(1) == match.group(2)
    return int(match.group(1))


def rasterise(svg: str, pixels_per_module: int) -> Image.Image:
    """The SVG as pixels, in greyscale, rendered by resvg from the SVG text alone (no background given: the
    image's own must show)."""
    side = modules(svg) * pixels_per_module
    png = resvg_py.svg_to_bytes(svg_string=svg, width=side, height=side, skip_system_fonts=True)
    image = Image.open(io.BytesIO(png))
    assert image.size == (side, side)
    # Drop alpha onto black: a transparent background would come out black and the code would not read.
    flat = Image.new("RGB", image.size, "#000")
    flat.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
    return flat.convert("L")


def decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))


@pytest.mark.parametrize("name", TOKENS)
def test_the_svg_decodes_back_to_the_token(name: str) -> None:
    token = TOKENS[name]
    svg = qr_svg(token)
    found = decode(rasterise(svg, pixels_per_module=4))
    assert [barcode.text for barcode in found] == [token]
    assert found[0].ec_level == "Q"
    assert SIGNER.verify(found[0].text).order_id  # and what was scanned verifies


@pytest.mark.parametrize("pixels_per_module", [2, 3, 10])
def test_the_svg_scales_and_still_decodes(pixels_per_module: int) -> None:
    token = TOKENS["typical"]
    found = decode(rasterise(qr_svg(token), pixels_per_module))
    assert [barcode.text for barcode in found] == [token]


def test_the_code_has_a_white_quiet_zone_of_four_modules() -> None:
    svg = qr_svg(TOKENS["typical"])
    size, k = modules(svg), 6
    image = rasterise(svg, k)
    edge = QUIET_ZONE * k
    for box in (
        (0, 0, size * k, edge),
        (0, size * k - edge, size * k, size * k),
        (0, 0, edge, size * k),
        (size * k - edge, 0, size * k, size * k),
    ):
        assert image.crop(box).getextrema() == (255, 255), box
    # The finder pattern's corner, just inside the quiet zone, is dark; ZXing's reading proves the rest.
    assert image.getpixel((edge + k // 2, edge + k // 2)) == 0
    assert QUIET_ZONE >= 4


def test_the_svg_is_a_standalone_scalable_document() -> None:
    token = TOKENS["typical"]
    svg = qr_svg(token)
    assert svg.startswith("<svg ")  # no XML declaration
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"  # the namespace is declared: valid as a .svg file, not only inline
    assert "width" not in root.attrib
    assert "height" not in root.attrib
    expected = segno.make(token, error="q", boost_error=False, micro=False)
    assert modules(svg) == expected.symbol_size(border=QUIET_ZONE)[0]
    dark = {element.get("stroke") or element.get("fill") for element in root.iter(f"{SVG_NS}path")}
    assert dark == {"#000", "#fff"}
    assert token not in svg  # the token is in the modules, not in the markup


def test_the_same_text_gives_the_same_svg() -> None:
    assert qr_svg(TOKENS["typical"]) == qr_svg(TOKENS["typical"])
    assert qr_svg(TOKENS["typical"]) != qr_svg(TOKENS["short"])


def test_a_text_no_qr_code_can_hold_is_refused() -> None:
    with pytest.raises(segno.DataOverflowError):
        qr_svg("x" * 3000)
