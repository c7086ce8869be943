"""Virtual channel ids and state hashes: Python equals the contract and eth-account."""

from perun_vyper import VirtualState, compact, expand, sign_digest, sign_state
from perun_vyper.core.codec import VIRTUAL_STATE
from tests.support import typed_data


def test_virtual_id__matches_contract(virtual_hashing, virtual, open_hub, make_virtual):
    vparams = make_virtual(open_hub(), 3, 4, validity=2**40, challenge_duration=7200, nonce=2**255)
    assert virtual_hashing.virtual_id(vparams.as_tuple()) == vparams.channel_id


def test_state_hash_and_digest__match_contract_and_eth_account(
    virtual_hashing, virtual, virtual_domain, open_hub, make_virtual
):
    vparams = make_virtual(open_hub())
    state = VirtualState.initial(vparams).pay(5, from_alice=True).finalized()
    assert virtual_hashing.state_hash(state.as_tuple()) == state.struct_hash()
    digest = virtual_domain.digest(state.struct_hash())
    assert virtual_hashing.state_digest(state.as_tuple(), virtual.DOMAIN_SEPARATOR()) == digest
    # The oracle: the typed-data document written out by hand, hashed by eth-account.
    document = typed_data.document(
        "VirtualState",
        {
            "VirtualState": typed_data.fields(
                ("channel", "bytes32"),
                ("version", "uint64"),
                ("balanceAlice", "uint256"),
                ("balanceBob", "uint256"),
                ("isFinal", "bool"),
            )
        },
        "PerunVirtual",
        virtual_domain.chain_id,
        virtual.address,
        {
            "channel": vparams.channel_id,
            "version": 2,
            "balanceAlice": state.balance_alice,
            "balanceBob": state.balance_bob,
            "isFinal": True,
        },
    )
    assert VIRTUAL_STATE.typed_data(state.as_tuple(), virtual_domain) == document
    assert typed_data.digest(document) == digest


def test_domain__is_bound_to_the_virtual_adjudicator(virtual, ledger, virtual_domain):
    assert virtual.DOMAIN_SEPARATOR() == virtual_domain.separator != ledger.DOMAIN_SEPARATOR()
    assert virtual.eip712Domain()[1:3] == ("PerunVirtual", "1")
    assert ledger.VIRTUAL_ADJUDICATOR() == virtual.address


def test_register__signature_abi__is_compact_r_vs_pair(virtual):
    # EIP-2098: each signature is two static words (r, vs), no length and no separate v byte.
    (register,) = [item for item in virtual.contract_type.abi if getattr(item, "name", None) == "register"]
    sigs = [(arg.name, arg.type, [(c.name, c.type) for c in arg.components]) for arg in register.inputs[2:]]
    assert sigs == [
        ("sig_alice", "tuple", [("r", "bytes32"), ("vs", "bytes32")]),
        ("sig_bob", "tuple", [("r", "bytes32"), ("vs", "bytes32")]),
    ]


def test_state_digest__compact_signature__packs_v_into_top_bit(
    virtual_hashing, virtual, virtual_domain, open_hub, make_virtual, alice
):
    # The signature Alice makes over the contract's digest, in the (r, vs) form register takes.
    vparams = make_virtual(open_hub())
    state = VirtualState.initial(vparams).pay(5, from_alice=True)
    sig = sign_state(alice.private_key, state, virtual_domain)
    assert (
        sign_digest(alice.private_key, virtual_hashing.state_digest(state.as_tuple(), virtual.DOMAIN_SEPARATOR()))
        == sig
    )
    r, vs = compact(sig)
    word = int.from_bytes(vs, "big")
    assert (r, word & (2**255 - 1), word >> 255) == (sig[:32], int.from_bytes(sig[32:64], "big"), sig[64] - 27)
    assert expand(r, vs) == sig
