"""Currencies Stripe charges in, and the amount rules that differ between them.

Amounts are integers in the currency's minor unit. Zero-decimal currencies (JPY, KRW, ...) have no minor unit:
1000 JPY is `amount=1000`. Three-decimal currencies (BHD, KWD, ...) must end in 0, as Stripe requires. Below a
currency's minimum Stripe refuses the charge (`amount_too_small`), so the gateway says so first, naming the field.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_AMOUNT", "MINIMUM_CHARGE", "amount_problem", "normalise_currency"]

MAX_AMOUNT: Final = 99_999_999
"""Stripe's limit: eight digits in the minor unit."""

ZERO_DECIMAL: Final = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
THREE_DECIMAL: Final = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

SUPPORTED: Final = (
    ZERO_DECIMAL
    | THREE_DECIMAL
    | frozenset(
        [
            "usd",
            "aed",
            "afn",
            "all",
            "amd",
            "ang",
            "aoa",
            "ars",
            "aud",
            "awg",
            "azn",
            "bam",
            "bbd",
            "bdt",
            "bgn",
            "bmd",
            "bnd",
            "bob",
            "brl",
            "bsd",
            "bwp",
            "byn",
            "bzd",
            "cad",
            "cdf",
            "chf",
            "cny",
            "cop",
            "crc",
            "cve",
            "czk",
            "dkk",
            "dop",
            "dzd",
            "egp",
            "etb",
            "eur",
            "fjd",
            "fkp",
            "gbp",
            "gel",
            "gip",
            "gmd",
            "gtq",
            "gyd",
            "hkd",
            "hnl",
            "htg",
            "huf",
            "idr",
            "ils",
            "inr",
            "isk",
            "jmd",
            "kes",
            "kgs",
            "khr",
            "kyd",
            "kzt",
            "lak",
            "lbp",
            "lkr",
            "lrd",
            "lsl",
            "mad",
            "mdl",
            "mkd",
            "mmk",
            "mnt",
            "mop",
            "mur",
            "mvr",
            "mwk",
            "mxn",
            "myr",
            "mzn",
            "nad",
            "ngn",
            "nio",
            "nok",
            "npr",
            "nzd",
            "pab",
            "pen",
            "pgk",
            "php",
            "pkr",
            "pln",
            "qar",
            "ron",
            "rsd",
            "rub",
            "sar",
            "sbd",
            "scr",
            "sek",
            "sgd",
            "shp",
            "sle",
            "sos",
            "srd",
            "std",
            "szl",
            "thb",
            "tjs",
            "top",
            "try",
            "ttd",
            "twd",
            "tzs",
            "uah",
            "uyu",
            "uzs",
            "wst",
            "xcd",
            "yer",
            "zar",
            "zmw",
        ]
    )
)

MINIMUM_CHARGE: Final = {
    # Stripe's minimum charge amounts, in minor units (docs: "Minimum and maximum charge amounts").
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50, "czk": 1500, "dkk": 250,
    "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50, "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300,
    "nzd": 50, "pln": 200, "ron": 200, "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip


def normalise_currency(code: str) -> str | None:
    """Lower-case ISO 4217 code if Stripe charges in it, else None."""
    lower = code.lower()
    return lower if lower in SUPPORTED else None


def amount_problem(amount: int, currency: str) -> str | None:
    """Why Stripe would refuse `amount` in `currency` (already normalised), or None if it is fine."""
    if amount < 1 or amount > MAX_AMOUNT:
        return f"Amount must be between 1 and {MAX_AMOUNT} (in the currency's minor unit)"
    minimum = MINIMUM_CHARGE.get(currency)
    if minimum is not None and amount < minimum:
        return f"Amount must be at least {minimum} for {currency.upper()} (Stripe's minimum charge)"
    if currency in THREE_DECIMAL and amount % 10 != 0:
        return f"Amounts in {currency.upper()} must end in 0 (Stripe rounds three-decimal currencies to 10)"
    return None
