"""A re-entrant ETH receiver against the app adjudicator's payouts (SPEC 12, SECURITY "re-entrancy").

As in the ledger (test_reentrant_receiver.py): the push of a conclusion gets 10,000 gas, too little for the
armed receiver to load its payload, so its payout is credited; `withdraw` forwards all gas, so there the
receiver re-enters, and every entry point it tries (a second withdraw, a close or a register of another
open channel, a view) is refused by the contract's lock: an empty revert, never a reason from past the
lock, and nothing moves.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from perun_vyper import ETH
from perun_vyper.core.app import NO_REGISTRATION
from tests.adversarial.hostile.helpers import assert_refused_by_lock
from tests.support.checks import assert_withdrawn
from tests.support.constants import E

# What the receiver re-enters with: the calldata, given the contract, the receiver's address and another
# open channel (its parameters, and its state 0 both signed, as it is and as a final state).
ENTRIES: dict[str, Callable[..., bytes]] = {
    "withdraw": lambda apps, who, other: apps.withdraw.encode_input(ETH, who),
    "close": lambda apps, who, other: apps.close.encode_input(other["params"].as_tuple(), *other["final"]),
    "register": lambda apps, who, other: apps.register.encode_input(
        other["params"].as_tuple(), *other["state"], NO_REGISTRATION.as_tuple()
    ),
    "registrations": lambda apps, who, other: apps.registrations.encode_input(other["params"].channel_id),
    "credits": lambda apps, who, other: apps.credits.encode_input(ETH, who),
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_withdraw__receiver_reenters__refused_by_lock_paid_once(
    apps, open_app, both, receiver_on, deployer, alice, watcher, entry: str
) -> None:
    params, state = open_app(E, E)
    other_params, other_state = open_app(E, E)
    other = {"params": other_params, "state": both(other_state), "final": both(other_state.finalized())}
    hostile = receiver_on(alice)
    hostile.arm(apps.address, bytes(ENTRIES[entry](apps, alice.address, other)), 0, sender=deployer)
    final = state.finalized()
    closed = apps.close(params.as_tuple(), *both(final), sender=watcher)
    # The armed receiver ran out of the push's 10,000 gas: Alice's E is credited, Bob's pushed.
    [credited] = closed.decode_logs(apps.Credited)
    assert (credited.owner, credited.amount) == (alice.address, E)
    assert hostile.attempts() == 0
    alice_before, apps_before = alice.balance, apps.balance

    tx = apps.withdraw(ETH, alice, sender=alice)

    assert_withdrawn(apps, tx, alice, ETH, alice.address, E)
    assert_refused_by_lock(hostile, 1)
    assert alice.balance == alice_before + E - tx.total_fees_paid
    assert apps.balance == apps_before - E
    assert apps.credits(ETH, alice) == 0
    # The other channel is as it was: open, both deposits in, no dispute.
    assert tuple(apps.holdings(other_params.channel_id)) == (E, E, False)
    assert bytes(apps.registrations(other_params.channel_id)) == b"\x00" * 32
