"""Hypothesis strategies: good and hostile values for every input of create_payment."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

good_customer = st.from_regex(r"[A-Z]{4}-[0-9]{5}", fullmatch=True)
bad_customer = st.one_of(
    st.from_regex(r"[a-z]{4}-[0-9]{5}", fullmatch=True),
    st.text(min_size=1, max_size=20).filter(lambda s: not _is_customer(s)),
    st.just("ABCD-12345'; DROP TABLE paymentorch_payments;--"),
    st.just("ABCD-١٢٣٤٥"),
    st.just("ABCD-12345\x00"),
    st.just("A" * 101),
    st.just(""),
    st.integers(),
    st.none(),
)

good_amount = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2),
    st.integers(min_value=1, max_value=1_000_000),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2).map(str),
)
bad_amount = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.just(Decimal("NaN")),
    st.just("Infinity"),
    st.just("-Infinity"),
    st.decimals(max_value=Decimal("0"), allow_nan=False, allow_infinity=False),
    st.decimals(min_value=Decimal("1000000.01"), allow_nan=False, allow_infinity=False),
    st.just("10.005"),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100"), places=3).filter(
        lambda d: d != d.quantize(Decimal("0.01"))
    ),
    st.just("1 000"),
    st.just("0x10"),
    st.just(""),
    st.lists(st.integers(), max_size=2),
)

good_currency = st.sampled_from(["USD", "EUR", "usd", "GBP", None])
bad_currency = st.one_of(
    st.sampled_from(["XXX", "ABC", "US", "USDD", "XAU", "ÜSD", "", "usd\x00"]),
    st.integers(),
)

good_key = st.one_of(
    st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=255)
)
bad_key = st.one_of(
    st.just(""),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=256, max_size=300),
    st.just("clé"),
    st.just("key\nwith newline"),
    st.integers(),
)

_meta_key = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=40)
good_metadata = st.one_of(
    st.none(),
    st.dictionaries(
        _meta_key,
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=500),
        max_size=20,
    ),
)
bad_metadata = st.one_of(
    st.dictionaries(_meta_key, st.just("v"), min_size=21, max_size=30),
    st.just({"k" * 41: "v"}),
    st.just({"": "v"}),
    st.just({"k": "v" * 501}),
    st.just({"k": 1}),
    st.just({"k": "\x07bell"}),
    st.just(["not", "a", "mapping"]),
)


def _is_customer(value: str) -> bool:
    import re

    return re.fullmatch(r"[A-Z]{4}-[0-9]{5}", value, re.ASCII) is not None
