"""perun_vyper.tools.deployment without a chain: salts, CREATE2 addresses, the immutables section, records."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from perun_vyper.tools.deployment import (
    DEFAULT_SALT,
    PROXY_ADDRESS,
    DeploymentError,
    Immutable,
    compare_code,
    create2_address,
    encode_immutables,
    flatten_code_layout,
    is_local_network,
    parse_salt,
    upsert_entry,
)

LAYOUT = [
    Immutable("m.NUMBER", "uint256", 0, 32),
    Immutable("m.NAME", "String[50]", 32, 96),
    Immutable("OTHER", "address", 128, 32),
]
VALUES = {"m.NUMBER": 31337, "m.NAME": "PerunLedger", "OTHER": PROXY_ADDRESS}


def test_deploy_helpers__create2__matches_eip1014_examples():
    zero = "0x0000000000000000000000000000000000000000"
    assert create2_address(bytes(32), b"\x00", zero) == "0x4D1A2e2bB4F88F0250f26Ffff098B0b30B26BF38"
    salt = bytes.fromhex("00000000000000000000000000000000000000000000000000000000cafebabe")
    assert (
        create2_address(salt, bytes.fromhex("deadbeef"), "0x00000000000000000000000000000000deadbeef")
        == "0x60f3f640a8508fC6a86d45DF051962668E1e8AC7"
    )


def test_deploy_helpers__salt__hex_as_is_text_hashed_default_project_salt():
    assert parse_salt(None) == DEFAULT_SALT == keccak(text="perun-vyper")
    assert parse_salt("0x" + "ab" * 32) == bytes.fromhex("ab" * 32)
    assert parse_salt("second set") == keccak(text="second set")
    assert parse_salt("0X" + "CD" * 32) == bytes.fromhex("cd" * 32)


@pytest.mark.parametrize(
    ("salt", "what"),
    [("0x1234", "has 4 hex digits"), ("0x" + "a" * 63, "has 63 hex digits"), ("0xzzz", "has non-hex characters")],
)
def test_deploy_helpers__malformed_hex_salt__refused(salt: str, what: str):
    with pytest.raises(DeploymentError) as refused:
        parse_salt(salt)
    assert str(refused.value) == (
        f"--salt {salt} {what}; a hex salt is 0x and 64 hex digits (32 bytes), and text without 0x is hashed into "
        "one. Nothing was deployed."
    )


def test_deploy_helpers__local_rule__local_network_and_forks_only():
    assert is_local_network("local")
    assert is_local_network("sepolia-fork")
    assert not is_local_network("sepolia")
    assert not is_local_network("custom")
    assert not is_local_network("mainnet")


def test_deploy_helpers__layout__flattened_by_offset():
    nested = {
        "typed_signatures": {"_NAME": {"type": "String[50]", "length": 96, "offset": 32}},
        "VIRTUAL_ADJUDICATOR": {"type": "x.vyi", "length": 32, "offset": 128},
        "_CHAIN": {"type": "uint256", "length": 32, "offset": 0},
    }
    assert [(imm.name, imm.offset) for imm in flatten_code_layout(nested)] == [
        ("_CHAIN", 0),
        ("typed_signatures._NAME", 32),
        ("VIRTUAL_ADJUDICATOR", 128),
    ]


def test_deploy_helpers__immutables__encoded_as_vyper_lays_them_out():
    section = encode_immutables(LAYOUT, VALUES)
    assert section == (
        (31337).to_bytes(32, "big")
        + (11).to_bytes(32, "big")
        + b"PerunLedger".ljust(64, b"\x00")
        + bytes(12)
        + bytes.fromhex(PROXY_ADDRESS[2:])
    )


def test_deploy_helpers__immutables__unknown_or_missing_names_fail():
    with pytest.raises(DeploymentError, match=r"unknown \['OTHER'\]"):
        encode_immutables(LAYOUT, {k: v for k, v in VALUES.items() if k != "OTHER"})
    with pytest.raises(DeploymentError, match=r"gone \['EXTRA'\]"):
        encode_immutables(LAYOUT, {**VALUES, "EXTRA": 1})


def test_deploy_helpers__compare_code__names_the_differing_part():
    runtime = bytes.fromhex("6001600055")
    section = encode_immutables(LAYOUT, VALUES)
    assert compare_code(runtime + section, runtime, section, LAYOUT) is None
    assert compare_code(b"", runtime, section, LAYOUT) == "no code"
    assert compare_code(b"\x60\x02" + runtime[2:] + section, runtime, section, LAYOUT) == (
        "runtime code differs from the compiled code at byte 1"
    )
    assert compare_code(runtime + section[:-1], runtime, section, LAYOUT) == (
        f"immutables section is {len(section) - 1} bytes, expected {len(section)}"
    )
    wrong = encode_immutables(LAYOUT, {**VALUES, "m.NUMBER": 1})
    assert compare_code(runtime + wrong, runtime, section, LAYOUT) == (
        f"immutable m.NUMBER holds 0x{(1).to_bytes(32, 'big').hex()}, expected 0x{(31337).to_bytes(32, 'big').hex()}"
    )


def test_deploy_helpers__records__same_addresses_replace_new_addresses_append():
    def entry(ledger: str, txn: str) -> dict:
        contracts = {"LedgerAdjudicator": {"address": ledger, "transaction": txn}}
        return {"chain_id": 31337, "salt": "0x01", "contracts": contracts}

    records: dict = {}
    upsert_entry(records, entry("0xA", "0x1"))
    upsert_entry(records, entry("0xA", "0x2"))  # a reset local chain
    upsert_entry(records, entry("0xB", "0x3"))  # new code, same salt
    assert [e["contracts"]["LedgerAdjudicator"]["transaction"] for e in records["31337"]["0x01"]] == ["0x2", "0x3"]
