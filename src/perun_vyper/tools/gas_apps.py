"""The app-channel lifecycles of ``make gas`` (docs/GAS.md): the SLA dispute answered on-chain and the
silent provider's penalty path, beside go-nitro's published force-move figures.

Run after every payment-channel lifecycle (``gas_report.measure``) with its own deployments, so the payment
figures, which depend on the deployer's nonce and the addresses it yields, are the same with or without it.
"""

from __future__ import annotations

from typing import Any

from ..core.app import NO_REGISTRATION, AppParams, AppState, Move
from ..core.codec import Domain
from ..core.keys import compact, sign_state
from ..core.sla import SlaData, request, respond

ONE = 10**18
PRICE = 10**15
PENALTY = 10**17
# go-nitro's published figures (its gas benchmarks): challenge 113,146; checkpoint / response 96,482;
# exit 82,026. A challenge answered on-chain is all three; the penalty path a challenge and an exit.
NITRO_ANSWERED = 113_146 + 96_482 + 82_026
NITRO_SILENT = 113_146 + 82_026
# Printed under the reference table of docs/GAS.md.
NOTE = (
    "App rows: an SLA dispute of an app channel (`AppAdjudicator` with `SlaApp`, SPEC 12), deposits excluded."
    " Nitro: challenge 113,146 + response (checkpoint) 96,482 + exit 82,026 when answered; challenge + exit"
    " when the provider is silent. Perun's Solidity reference publishes no app-channel figures."
)
REFERENCES: dict[str, tuple[int | None, int | None, int]] = {
    "app.sla_answered_on_chain": (None, NITRO_ANSWERED, 200_000),
    "app.sla_provider_silent": (None, NITRO_SILENT, 180_000),
}


def measure_apps(project: Any, accounts: Any, chain: Any, report: Any, deployer: Any, alice: Any, bob: Any) -> None:
    """Deploy the app adjudicator and the SLA app, run both SLA disputes and a cooperative close, and add
    the figures to ``report`` (a ``gas_report.GasReport``)."""
    apps = deployer.deploy(project.AppAdjudicator)
    sla = deployer.deploy(project.SlaApp)
    fig = report.figures
    fig["app.deploy"] = int(chain.get_receipt(apps.txn_hash).gas_used)
    fig["sla.deploy"] = int(chain.get_receipt(sla.txn_hash).gas_used)
    domain = Domain.app(chain.chain_id, apps.address)

    def sig(state: AppState, who: Any) -> tuple[bytes, bytes]:
        return compact(sign_state(who.private_key, state, domain))

    def opened(nonce: int) -> tuple[AppParams, AppState]:
        params = AppParams(str(alice.address), str(bob.address), str(sla.address), nonce=nonce)
        apps.deposit(params.channel_id, 0, value=ONE, sender=alice)
        apps.deposit(params.channel_id, 1, value=ONE, sender=bob)
        data = SlaData(PRICE, PENALTY, 3).encode()
        return params, AppState.initial(params.channel_id, ONE, ONE, data)

    for key, answered, nonce in (("app.sla_answered_on_chain", True, 1), ("app.sla_provider_silent", False, 2)):
        params, state = opened(nonce)
        asked = request(state, b"\x11" * 32)
        _steady_deadline(chain, params.challenge_duration)
        forced = apps.register_and_progress(
            params.as_tuple(),
            state.as_tuple(),
            sig(state, alice),
            sig(state, bob),
            NO_REGISTRATION.as_tuple(),
            Move.between(state, asked, 0).as_tuple(),
            sig(asked, alice),
            sender=alice,
        )
        steps: list[tuple[str, Any]] = [("register_and_progress (request)", forced)]
        last, deadline = asked, _checked(forced.decode_logs(apps.Progressed)[0].deadline)
        if answered:
            answer = respond(asked, b"\x22" * 32)
            _steady_deadline(chain, params.challenge_duration)
            progress = apps.progress(
                params.as_tuple(),
                asked.as_tuple(),
                deadline,
                0,  # the agreed version: state 0 was registered
                Move.between(asked, answer, 1).as_tuple(),
                sig(answer, bob),
                sender=bob,
            )
            steps.append(("progress (response)", progress))
            last, deadline = answer, _checked(progress.decode_logs(apps.Progressed)[0].deadline)
        chain.pending_timestamp = deadline
        steps.append(("conclude", apps.conclude(params.as_tuple(), last.as_tuple(), deadline, 0, sender=alice)))
        report.lifecycle(key, steps)

    params, state = opened(3)
    final = request(state, b"\x11" * 32)
    final = respond(final, b"\x22" * 32).finalized()
    close = apps.close(params.as_tuple(), final.as_tuple(), sig(final, alice), sig(final, bob), sender=alice)
    fig["app.close_cooperative"] = int(close.gas_used)


def _steady_deadline(chain: Any, period: int) -> None:
    """Time the next block so that the deadline it sets (its timestamp plus ``period``) has no zero byte in
    its low four. The later moves carry that deadline as calldata, which costs 4 gas a zero byte and 16
    otherwise: a deadline taken from the wall clock would change the figures from run to run."""
    at = int(chain.blocks.head.timestamp) + 1
    while not _no_zero_byte(at + period):
        at += 1
    chain.pending_timestamp = at


def _checked(deadline: int) -> int:
    """``deadline``, which the pinned timestamp made free of zero bytes (or the figures would not be steady)."""
    if not _no_zero_byte(deadline):
        raise AssertionError(f"deadline {deadline:#x} has a zero byte: the gas figures would vary by run")
    return deadline


def _no_zero_byte(value: int) -> bool:
    return all((value >> (8 * index)) & 0xFF for index in range(4))
