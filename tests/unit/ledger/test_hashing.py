"""The off-chain hashing equals the contract's, and eth-account's typed-data encoding."""

from eth_utils import keccak

from perun_vyper import ChannelParams, LedgerState, Lock
from perun_vyper.core.codec import LEDGER_STATE
from tests.support import typed_data


def _state(params: ChannelParams, **kw) -> LedgerState:
    base = {"channel": params.channel_id, "version": 7, "balance_a": 3, "balance_b": 5, "funding_a": 4, "funding_b": 4}
    base.update(kw)
    return LedgerState(**base)


def test_channel_id__eth_and_token__match_contract(ledger_hashing, ledger, make_params, token):
    for params in (make_params(), make_params(asset=token, challenge_duration=86400, nonce=2**200)):
        assert ledger_hashing.channel_id(params.as_tuple()) == params.channel_id


def test_channel_id__asset_kind__sets_bit_255(make_params, token):
    assert make_params().channel_id[0] & 0x80 == 0
    assert make_params(asset=token).channel_id[0] & 0x80 == 0x80


def test_state_hash__matches_contract(ledger_hashing, ledger, make_params):
    params = make_params()
    for state in (
        _state(params),
        _state(params, is_final=True, version=0),
        LedgerState.initial(params.channel_id, 0, 0),
    ):
        assert ledger_hashing.state_hash(state.as_tuple()) == state.struct_hash()


def test_state_hash__with_locks__matches_contract(ledger_hashing, ledger, make_params):
    params = make_params()
    locks = tuple(Lock(keccak(i.to_bytes(32, "big")), i, 2 * i) for i in range(1, 4))
    state = LedgerState(params.channel_id, 9, 1, 1, 20, 0, locks)
    assert ledger_hashing.state_hash(state.as_tuple()) == state.struct_hash()


def test_state_digest__matches_contract_and_eth_account(ledger_hashing, ledger, domain, make_params):
    params = make_params()
    locks = (Lock(b"\x11" * 32, 5, 6),)
    state = LedgerState(params.channel_id, 3, 1, 2, 9, 5, locks, False)
    digest = domain.digest(state.struct_hash())
    assert ledger_hashing.state_digest(state.as_tuple(), ledger.DOMAIN_SEPARATOR()) == digest
    # The oracle: the typed-data document written out by hand, hashed by eth-account.
    document = typed_data.document(
        "LedgerState",
        {
            "LedgerState": typed_data.fields(
                ("channel", "bytes32"),
                ("version", "uint64"),
                ("balanceA", "uint256"),
                ("balanceB", "uint256"),
                ("fundingA", "uint256"),
                ("fundingB", "uint256"),
                ("locks", "Lock[]"),
                ("isFinal", "bool"),
            ),
            "Lock": typed_data.fields(("channel", "bytes32"), ("amountA", "uint256"), ("amountB", "uint256")),
        },
        domain.name,
        domain.chain_id,
        ledger.address,
        {
            "channel": state.channel,
            "version": 3,
            "balanceA": 1,
            "balanceB": 2,
            "fundingA": 9,
            "fundingB": 5,
            "locks": [{"channel": b"\x11" * 32, "amountA": 5, "amountB": 6}],
            "isFinal": False,
        },
    )
    assert LEDGER_STATE.typed_data(state.as_tuple(), domain) == document
    assert typed_data.digest(document) == digest


def test_domain__matches_eip5267_and_separator(ledger, domain, chain):
    fields, name, version, chain_id, verifying, salt, extensions = ledger.eip712Domain()
    assert fields == b"\x0f"
    assert (name, version, chain_id, verifying) == (domain.name, domain.version, chain.chain_id, ledger.address)
    assert ledger.DOMAIN_SEPARATOR() == domain.separator
    assert salt == b"\x00" * 32 and list(extensions) == []


def test_constants__match_python(ledger):
    from perun_vyper.core import constants

    assert ledger.MIN_CHALLENGE_DURATION() == constants.MIN_CHALLENGE_DURATION
    assert ledger.MAX_CHALLENGE_DURATION() == constants.MAX_CHALLENGE_DURATION
    assert ledger.MAX_LOCKS() == constants.MAX_LOCKS
    assert ledger.MAX_AMOUNT() == constants.MAX_AMOUNT
