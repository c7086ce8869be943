"""close: a final app state both participants signed pays both sides at once (no dispute open)."""

import ape
import pytest

from perun_vyper.core.app import AppState

APP_NOT_FINAL = "app: state not final"


def test_close__final_state__pays_both_and_concludes(apps, open_app, both, alice, bob, stranger):
    params, state = open_app(10**18, 2 * 10**18)
    final = AppState(state.channel, 7, 10**18 + 5, 2 * 10**18 - 5, 10**18, 2 * 10**18, state.app_data, True)
    before = (alice.balance, bob.balance)
    receipt = apps.close(params.as_tuple(), *both(final), sender=stranger)
    assert (alice.balance - before[0], bob.balance - before[1]) == (10**18 + 5, 2 * 10**18 - 5)
    [event] = receipt.decode_logs(apps.Concluded)
    assert (bytes(event.channel), event.version, event.payout_a, event.payout_b) == (
        params.channel_id,
        7,
        10**18 + 5,
        2 * 10**18 - 5,
    )
    assert apps.holdings(params.channel_id) == (0, 0, True)
    assert apps.balance == 0


def test_close__not_final__reverts(apps, open_app, both, alice):
    params, state = open_app()
    with ape.reverts(APP_NOT_FINAL):
        apps.close(params.as_tuple(), *both(state), sender=alice)


def test_close__disputed__reverts(apps, open_app, both, register, alice):
    params, state = open_app()
    register(params, state)
    with ape.reverts("app: channel disputed"):
        apps.close(params.as_tuple(), *both(state.finalized()), sender=alice)


def test_close__twice__reverts_concluded(apps, open_app, both, alice):
    params, state = open_app()
    apps.close(params.as_tuple(), *both(state.finalized()), sender=alice)
    with ape.reverts("ledger: channel concluded"):
        apps.close(params.as_tuple(), *both(state.finalized()), sender=alice)


@pytest.mark.parametrize("signers", ["bob-bob", "alice-alice", "stranger"])
def test_close__wrong_signer__reverts(apps, open_app, both, alice, bob, stranger, signers):
    params, state = open_app()
    a, b = {"bob-bob": (bob, bob), "alice-alice": (alice, alice), "stranger": (alice, stranger)}[signers]
    with ape.reverts("app: wrong signer"):
        apps.close(params.as_tuple(), *both(state.finalized(), a, b), sender=alice)


def test_close__invalid_signature__reverts(apps, open_app, both, alice):
    params, state = open_app()
    args = both(state.finalized())
    with ape.reverts("app: invalid signature"):
        apps.close(params.as_tuple(), args[0], args[1], (b"\x00" * 32, b"\x00" * 32), sender=alice)


def test_close__state_of_another_channel__reverts(apps, open_app, both, alice):
    params, _ = open_app()
    _, other = open_app()
    with ape.reverts("app: state for another channel"):
        apps.close(params.as_tuple(), *both(other.finalized()), sender=alice)


def test_close__unfunded_channel__reverts_unknown(apps, open_app, both, alice):
    params, state = open_app(0, 0)
    with ape.reverts("ledger: unknown channel"):
        apps.close(params.as_tuple(), *both(state.finalized()), sender=alice)


def test_close__zero_app__reverts(apps, open_app, both, alice):
    params, state = open_app()
    zero_app = (*params.as_tuple()[:5], "0x" + "00" * 20)
    with ape.reverts("app: zero app"):
        apps.close(zero_app, *both(state.finalized()), sender=alice)


def test_close__balances_off_funding__reverts(apps, open_app, app_domain, alice, bob):
    from perun_vyper import compact, sign_digest
    from perun_vyper.core.codec import APP_STATE

    params, state = open_app()
    # AppState refuses to build such a state: sign its tuple directly.
    raw = (state.channel, 1, 10**18 + 1, 10**18, 10**18, 10**18, state.app_data, True)
    digest = app_domain.digest(APP_STATE.hash(raw))
    sigs = [compact(sign_digest(who.private_key, digest)) for who in (alice, bob)]
    with ape.reverts("ledger: balances do not match funding"):
        apps.close(params.as_tuple(), raw, *sigs, sender=alice)


def test_close__unfunded_state__refunds_deposits(apps, open_app, both, alice, bob, stranger):
    # Bob never deposited: a state that says he funded pays each side its own deposit back.
    params, state = open_app(10**18, 0)
    final = AppState(state.channel, 1, 0, 2 * 10**18, 10**18, 10**18, state.app_data, True)
    before = (alice.balance, bob.balance)
    apps.close(params.as_tuple(), *both(final), sender=stranger)
    assert (alice.balance - before[0], bob.balance - before[1]) == (10**18, 0)


def test_close__ledger_domain_signature__reverts(apps, open_app, domain, alice, bob):
    # The same state signed in the ledger's domain: separate domains, so it is not an app state.
    from perun_vyper import compact, sign_state

    params, state = open_app()
    final = state.finalized()
    sigs = [compact(sign_state(who.private_key, final, domain)) for who in (alice, bob)]
    with ape.reverts("app: wrong signer"):
        apps.close(params.as_tuple(), final.as_tuple(), *sigs, sender=alice)
