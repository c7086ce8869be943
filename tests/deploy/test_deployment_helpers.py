"""perun_vyper.tools.deployment without a chain: salts, CREATE2 addresses, the immutables section, records."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from perun_vyper.tools.deployment import (
    DEFAULT_SALT,
    DEPLOYED,
    PROXY_ADDRESS,
    DeploymentError,
    Immutable,
    Target,
    compare_code,
    create2_address,
    encode_immutables,
    expected_immutable_values,
    find_entry,
    flatten_code_layout,
    is_local_network,
    missing_note,
    parse_salt,
    record_contracts,
    up_to_date,
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


def _contracts(**addresses: str) -> dict:
    return {name: {"address": address, "status": "deployed"} for name, address in addresses.items()}


PAIR = {"VirtualAdjudicator": "0xV", "LedgerAdjudicator": "0xL"}
SET = {**PAIR, "AppAdjudicator": "0xA", "SlaApp": "0xS"}


def test_deploy_helpers__set__payment_pair_first_then_the_apps():
    assert DEPLOYED == ("VirtualAdjudicator", "LedgerAdjudicator", "AppAdjudicator", "SlaApp")


def test_deploy_helpers__immutables__app_adjudicator_perun_app_sla_app_none():
    values = expected_immutable_values("AppAdjudicator", PROXY_ADDRESS, 5, None)
    assert values["typed_signatures._NAME"] == "PerunApp"
    assert values["typed_signatures._HASHED_NAME"] == keccak(text="PerunApp")
    assert values["typed_signatures._CACHED_CHAIN_ID"] == 5
    assert "VIRTUAL_ADJUDICATOR" not in values
    assert expected_immutable_values("SlaApp", PROXY_ADDRESS, 5, None) == {}


def test_deploy_helpers__records__a_pair_record_is_upgraded_by_the_whole_set_in_place():
    old = {"chain_id": 1, "salt": "0x01", "contracts": _contracts(**PAIR)}
    new = {"chain_id": 1, "salt": "0x01", "contracts": _contracts(**SET)}
    other_apps = {"chain_id": 1, "salt": "0x01", "contracts": _contracts(**{**SET, "SlaApp": "0xT"})}
    records: dict = {}
    upsert_entry(records, old)
    salt = b"\x01"  # recorded as "0x01"

    assert find_entry({"1": {"0x01": [old]}}, 1, salt, SET) is old  # the pair's record is this set's, older
    assert not up_to_date(old, SET)
    upsert_entry(records, new)
    assert records["1"]["0x01"] == [new]
    assert up_to_date(new, SET)
    upsert_entry(records, other_apps)  # another SlaApp under the same salt: another deployment
    assert records["1"]["0x01"] == [new, other_apps]
    assert find_entry(records, 1, salt, {**PAIR, "AppAdjudicator": "0xB", "SlaApp": "0xS"}) is None
    pending = {"contracts": {**_contracts(**SET), "SlaApp": {"address": "0xS", "status": "pending"}}}
    assert not up_to_date(pending, SET)
    assert not up_to_date(None, SET)


def test_deploy_helpers__missing_note__names_the_contracts_and_the_command():
    command = "`ape run deploy --network ethereum:sepolia:node --account <alias>"
    default = "0x" + DEFAULT_SALT.hex()
    assert missing_note({"salt": default, "contracts": _contracts(**SET)}, "ethereum:sepolia:node") is None
    assert missing_note({"salt": default, "contracts": _contracts(**PAIR)}, "ethereum:sepolia:node") == (
        f"AppAdjudicator, SlaApp not recorded (the record predates them): run {command}` again to deploy and "
        "record them"
    )
    other = "0x" + "ab" * 32
    assert missing_note({"salt": other, "contracts": _contracts(**PAIR)}, "ethereum:sepolia:node") == (
        f"AppAdjudicator, SlaApp not recorded (the record predates them): run {command} --salt {other}` again to "
        "deploy and record them"
    )


def test_deploy_helpers__record_contracts__found_again_keeps_the_earlier_transaction():
    def target(name: str, status: str) -> Target:
        return Target(name, DEFAULT_SALT, {}, b"\x01", SET[name], b"", [], b"\x02", status, None, None)

    earlier = {"LedgerAdjudicator": {"address": "0xL", "status": "deployed", "transaction": "0x99", "block": 7}}
    contracts = record_contracts(
        [target("LedgerAdjudicator", "present"), target("AppAdjudicator", "present"), target("SlaApp", "deploy")],
        "0xD",
        {"contracts": earlier},
    )
    assert contracts["LedgerAdjudicator"] == earlier["LedgerAdjudicator"]
    assert contracts["AppAdjudicator"] == {
        "address": "0xA",
        "status": "found",
        "transaction": None,
        "block": None,
        "deployer": None,
        "constructor_args": {},
        "init_code_hash": "0x" + keccak(b"\x01").hex(),
        "code_hash": "0x" + keccak(b"\x02").hex(),
    }
    assert contracts["SlaApp"]["status"] == "pending"
