"""The display rules (``perun_vyper.core.display``), exact strings: amounts in units beside the base value,
times in UTC relative to a block time, counts with their noun, a token's unit read once."""

from __future__ import annotations

import pytest
from eth_abi import encode
from hypothesis import given
from hypothesis import strategies as st

from perun_vyper.core.display import AssetUnits, amount, duration, hex_of, plural, utc, when

NOW = 1_796_354_829  # 2026-12-04 03:27:09 UTC


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ((0,), "0 ETH (0 wei)"),
        ((1,), "0.000000000000000001 ETH (1 wei)"),
        ((15 * 10**17,), "1.5 ETH (1500000000000000000 wei)"),
        ((10 * 10**18,), "10 ETH (10000000000000000000 wei)"),
        ((1_556_844_896_324_393,), "0.001556844896324393 ETH (1556844896324393 wei)"),
        ((-55 * 10**16,), "-0.55 ETH (-550000000000000000 wei)"),
        ((2**256 - 1,), f"{(2**256 - 1) // 10**18}.{(2**256 - 1) % 10**18:018d} ETH ({2**256 - 1} wei)"),
        ((1_500_000, "USDC", 6), "1.5 USDC (1500000 base units)"),
        ((42, "NFT", 0), "42 NFT (42 base units)"),
        ((10**18, "units"), "1 units (1000000000000000000 base units)"),
    ],
)
def test_amount__exact_units_beside_base_value(args, shown):
    assert amount(*args) == shown


@given(st.integers(min_value=-(2**256), max_value=2**256), st.integers(min_value=0, max_value=36))
def test_amount__units_part_is_the_exact_value(value, decimals):
    units = amount(value, "TOK", decimals).split(" ")[0]
    whole, _, fraction = units.lstrip("-").partition(".")
    assert not fraction.endswith("0")
    exact = int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or 0)
    assert (-exact if units.startswith("-") else exact) == value


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (60, "1 min"),
        (3599, "59 min 59 s"),
        (3600, "1 h"),
        (2 * 3600 + 5 * 60 + 59, "2 h 5 min"),
        (86_400 + 5, "1 d"),
        (30 * 86_400 + 3 * 3600, "30 d 3 h"),
    ],
)
def test_duration__two_largest_units_truncated(seconds, shown):
    assert duration(seconds) == shown


def test_when__utc_and_relative_to_the_given_time():
    assert utc(NOW) == "2026-12-04 03:27:09 UTC"
    assert when(NOW, NOW) == "2026-12-04 03:27:09 UTC (now)"
    assert when(NOW + 59 * 60, NOW) == "2026-12-04 04:26:09 UTC (in 59 min)"
    assert when(NOW - 2 * 3600 - 5 * 60, NOW) == "2026-12-04 01:22:09 UTC (2 h 5 min ago)"
    assert when(NOW + 1, NOW) == "2026-12-04 03:27:10 UTC (in 1 s)"
    assert when(NOW + 3 * 86_400, NOW) == "2026-12-07 03:27:09 UTC (in 3 d)"
    assert when(0, 0) == "1970-01-01 00:00:00 UTC (now)"
    # A uint64 deadline is past year 9999: shown as the number, never an error.
    assert when(2**64 - 1, NOW).startswith(f"unix time {2**64 - 1} (in ")


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ((0, "channel"), "0 channels"),
        ((1, "action"), "1 action"),
        ((2, "action"), "2 actions"),
        ((1, "entry", "entries"), "1 entry"),
        ((3, "entry", "entries"), "3 entries"),
    ],
)
def test_plural(args, shown):
    assert plural(*args) == shown


def test_hex_of__full_lower_case_hex():
    assert hex_of(bytes(range(32))) == "0x" + bytes(range(32)).hex()
    assert hex_of("0xABCDEF") == "0xabcdef"
    assert hex_of("abcdef") == "0xabcdef"


TOKEN = "0x" + "12" * 20
SYMBOL, DECIMALS = bytes.fromhex("95d89b41"), bytes.fromhex("313ce567")


def _token(answers: dict[bytes, bytes]) -> tuple[AssetUnits, list[tuple[str, bytes]]]:
    calls: list[tuple[str, bytes]] = []

    def call(address: str, data: bytes) -> bytes:
        calls.append((address, data))
        if data not in answers:
            raise RuntimeError("execution reverted")
        return answers[data]

    return AssetUnits(call), calls


def test_asset_units__eth_without_a_call_token_read_once():
    units, calls = _token({SYMBOL: encode(["string"], ["USDC"]), DECIMALS: encode(["uint8"], [6])})
    assert units.of("0x" + "00" * 20) == ("ETH", 18)
    assert calls == []
    assert units.amount(1_500_000, TOKEN) == "1.5 USDC (1500000 base units)"
    assert units.amount(7, TOKEN.upper().replace("0X", "0x")) == "0.000007 USDC (7 base units)"
    assert calls == [(TOKEN, SYMBOL), (TOKEN, DECIMALS)]  # once per asset, whatever the address's case


@pytest.mark.parametrize(
    "answers",
    [
        {},  # no symbol() or decimals(): reverts
        {SYMBOL: encode(["string"], ["TOK"])},  # no decimals()
        {SYMBOL: b"", DECIMALS: encode(["uint8"], [6])},  # empty return data
        {SYMBOL: encode(["string"], ["TOK\nfailed  forged line"]), DECIMALS: encode(["uint8"], [6])},
        {SYMBOL: encode(["string"], ["eth"]), DECIMALS: encode(["uint8"], [18])},  # passing for ether
        {SYMBOL: encode(["string"], ["TOK"]), DECIMALS: encode(["uint256"], [2**255])},
    ],
)
def test_asset_units__unusable_answers__units_with_18_decimals(answers):
    units, _ = _token(answers)
    assert units.amount(15 * 10**17, TOKEN) == "1.5 units (1500000000000000000 base units)"


def test_asset_units__bytes32_symbol__read():
    units, _ = _token({SYMBOL: b"MKR".ljust(32, b"\0"), DECIMALS: encode(["uint8"], [18])})
    assert units.of(TOKEN) == ("MKR", 18)
