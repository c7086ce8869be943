"""An app channel client: one participant's view of an app channel (docs/SPEC.md section 12), its
off-chain moves, durable like every channel of this package, and its AppAdjudicator calls through Ape.

Off-chain, both sign every state. The proposer signs first and commits its signature; the receiver
checks the update and countersigns (``Party``). A party signs only

- a move: the next version, changing only the balances and the app data, that the app accepts with the
  proposer as the mover (checked by ``rules``, the app's rules in Python, and by the app contract itself
  through an ``eth_call`` when the channel has an adjudicator); or
- the final state: the latest state's balances and app data, final, to close cooperatively;

and only while the chain could still enforce it: no state once a dispute is open or the channel
concluded (``AppStatus.require_open``), and nothing beyond version 0 before the deposits are on-chain.

Why the app check matters to the proposer too: a proposal the counterpart never countersigns is still a
state we signed alone, and ``force`` puts it on-chain as a move (``register_and_progress``), which
succeeds only if the app accepts it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, Unpack

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from ..chain import AppStatus, ChainView, check_domain, signer_of
from ..chain.accounts import Key
from ..core.app import NO_REGISTRATION, AppParams, AppState, Move
from ..core.channel import ChannelParams
from ..core.codec import Domain, hexstr
from ..core.keys import Signer, compact
from ..core.protocol import SignedState, Update, VirtualFinal
from ..errors import InvalidState, RefusedUpdate, StoreError
from ..store import ChannelRecord, ChannelStore
from .app_dispute import AppDispute, read_dispute
from .funding import Funded
from .party import Party

Rules = Callable[[AppState, AppState, int], None]
"""The app's rules in Python: ``rules(old, new, mover)`` raises (``InvalidState``) unless ``new`` may follow
``old`` by a move of side ``mover`` (e.g. ``perun_vyper.core.sla.check``)."""

_PARAMS_TYPE = "(address,address,address,uint64,uint256,address)"
_STATE_TYPE = "(bytes32,uint64,uint256,uint256,uint256,uint256,bytes,bool)"
_VALID_TRANSITION = f"valid_transition({_PARAMS_TYPE},{_STATE_TYPE},{_STATE_TYPE},uint256)"


class AppChainOptions(TypedDict, total=False):
    """How an app channel client uses the chain (``open`` / ``restore`` pass them to the constructor)."""

    adjudicator: Any  # the AppAdjudicator as an Ape contract object; without it: off-chain only
    rules: Rules  # the app's rules in Python, checked before the app contract
    confirmations: int  # how many blocks deep a deposit must be to count as funding
    start_block: int  # the first block whose events can concern this channel (dispute reading)
    view: ChainView  # a view shared by many channels; replaces the adjudicator's own view


class AppChannel(Funded, Party):
    """One participant's view of an app channel: off-chain moves, durable, and the chain calls.

    ``adjudicator`` is the deployed AppAdjudicator as an Ape contract object; without it the client works
    off-chain only, needs ``rules`` to check moves and ``confirm_funding(holdings)`` before it signs
    anything beyond version 0.
    """

    kind = "app"
    state_type = AppState
    adjudicator_name = "AppAdjudicator"

    def __init__(
        self,
        record: ChannelRecord,
        signer: Signer,
        store: ChannelStore,
        adjudicator: Any = None,
        *,
        rules: Rules | None = None,
        confirmations: int = 0,
        start_block: int = 0,
        view: ChainView | None = None,
    ) -> None:
        params = record.params
        if not isinstance(params, AppParams):
            raise StoreError(f"{hexstr(record.channel_id)} is not an app channel")
        super().__init__(record, signer, store, (params.participant_a, params.participant_b))
        self.params: AppParams = params
        self.adjudicator = adjudicator
        self.rules = rules
        self.start_block = start_block
        self.chain = view or ChainView(adjudicator, confirmations=confirmations)
        self._funded = (0, 0)  # deposits known to be on-chain

    @classmethod
    def open(
        cls,
        params: AppParams,
        domain: Domain,
        key: Key,
        store: ChannelStore,
        deposit_a: int,
        deposit_b: int,
        app_data: bytes,
        **chain: Unpack[AppChainOptions],
    ) -> AppChannel:
        """Record a new app channel and our signature of its initial state (each side owns what it will
        deposit; ``app_data`` is the app's initial data). Send ``pending()`` to the counterpart, who opened
        the same channel, to exchange it."""
        signer = signer_of(key)
        params.funding_params.side_of(signer.address)
        if chain.get("adjudicator") is not None:
            check_domain(domain, chain["adjudicator"], "app")
        record = ChannelRecord(params.channel_id, "app", params, domain, signer.address)
        channel = cls(record, signer, store, **chain)
        channel._open(AppState.initial(params.channel_id, deposit_a, deposit_b, app_data))
        return channel

    @classmethod
    def restore(cls, store: ChannelStore, channel_id: bytes, key: Key, **chain: Unpack[AppChainOptions]) -> AppChannel:
        """The channel as the store holds it, with our proposal in flight (if any) in ``pending()``."""
        record, signer = cls._owned(store, channel_id, key)
        channel = cls(record, signer, store, **chain)
        channel._load()
        return channel

    @classmethod
    def watch(cls, store: ChannelStore, channel_id: bytes, adjudicator: Any, *, start_block: int = 0) -> AppChannel:
        """A watch-only view of a stored channel for a watchtower that holds no channel key: it reads the
        dispute, registers the latest state both signed and concludes, and signs nothing (a move raises)."""
        record = store.channel(channel_id)
        channel = cls(record, _NoKey(record.owner), store, adjudicator, start_block=start_block)  # type: ignore[arg-type]
        channel._load()
        return channel

    # --- proposals ----------------------------------------------------------------------------------

    @property
    def app_state(self) -> AppState:
        """The latest state both signed."""
        state = self.state
        assert isinstance(state, AppState)
        return state

    def propose_move(self, state: AppState) -> Update:
        """Sign our move to ``state`` (the next version) and return the update to send."""
        return self.propose(state)

    def propose_final(self) -> Update:
        """The final state with the latest balances and app data: what both sign to close cooperatively."""
        return self.propose(self.app_state.finalized())

    # --- the rules of every signature ---------------------------------------------------------------

    def _check(self, old: AppState, new: AppState, proposer: int, release: VirtualFinal | None, *, joint: bool) -> None:
        if release is not None:
            raise RefusedUpdate("an app channel update carries no release evidence")
        # Never sign what the chain could no longer enforce: nothing once a dispute is open or concluded.
        self.chain.app(self.channel_id).require_open()
        if old.is_final:
            raise RefusedUpdate("the channel's latest state is final; close it on-chain (close) instead of updating")
        if new.is_final:
            if new != old.finalized():
                raise RefusedUpdate(
                    "a final state keeps the latest state's balances and app data with the next version; propose "
                    "propose_final()"
                )
        else:
            try:
                Move.between(old, new, proposer)
            except InvalidState as exc:
                raise RefusedUpdate(f"not a move: {exc}") from None
            self.check_move(old, new, proposer)
        self._require_funded(new)

    def check_move(self, old: AppState, new: AppState, mover: int) -> None:
        """Refuse (``RefusedUpdate``) unless the app accepts ``new`` after ``old`` by a move of ``mover``:
        ``rules`` first, then the app contract (when connected). With neither, nothing can be checked and
        nothing is signed."""
        if self.rules is None and self.adjudicator is None:
            raise RefusedUpdate(
                "this app channel has neither rules nor an adjudicator to check moves with; pass rules= (e.g. "
                "perun_vyper.core.sla.check) or adjudicator= to open/restore"
            )
        if self.rules is not None:
            try:
                self.rules(old, new, mover)
            except InvalidState as exc:
                raise RefusedUpdate(f"the app refuses the move: {exc}") from None
        if self.adjudicator is not None:
            reason = self._app_verdict(old, new, mover)
            if reason is not None:
                raise RefusedUpdate(f"the app contract {self.params.app} refuses the move: {reason}")

    def _app_verdict(self, old: AppState, new: AppState, mover: int) -> str | None:
        """None if the app contract's ``valid_transition`` returns true, else why not (its revert reason)."""
        data = function_signature_to_4byte_selector(_VALID_TRANSITION) + encode(
            [_PARAMS_TYPE, _STATE_TYPE, _STATE_TYPE, "uint256"],
            [self.params.as_tuple(), old.as_tuple(), new.as_tuple(), mover],
        )
        web3 = self.adjudicator.provider.web3
        try:
            result = bytes(web3.eth.call({"to": self.params.app, "data": "0x" + data.hex()}, "latest"))
        except Exception as exc:  # a revert: web3 names its reason in the message
            text = str(exc.args[0] if exc.args else exc)
            return text.removeprefix("execution reverted: ") or type(exc).__name__
        return None if result == (1).to_bytes(32, "big") else "valid_transition did not return true"

    def _chain(self) -> ChainView:
        return self.chain

    def _status(self) -> AppStatus:
        return self.chain.app(self.channel_id)

    def _funding(self) -> ChannelParams:
        return self.params.funding_params

    # --- chain --------------------------------------------------------------------------------------

    def dispute(self) -> AppDispute | None:
        """The open dispute (the registered or last moved state, checked against the adjudicator's word),
        or None."""
        contract = self._contract()
        word = bytes(contract.registrations(self.channel_id))
        return read_dispute(contract, self.channel_id, word, self._find, self.start_block)

    def _find(self, version: int, state_hash: bytes) -> AppState | None:
        stored = self.store.state(self.channel_id, version)
        if stored is None or not isinstance(stored.state, AppState) or stored.state.struct_hash() != state_hash:
            return None
        return stored.state

    def close(self, sender: Any) -> Any:
        """Close on-chain with the latest state, which must be final and signed by both."""
        signed = self._require_latest()
        if not signed.state.is_final:
            raise RefusedUpdate("the latest state is not final; propose_final() and complete it before closing")
        return self._contract().close(self.params.as_tuple(), *_both(signed), sender=sender)

    def register(self, sender: Any, current: AppDispute | None = None) -> Any:
        """Register the latest state both signed: opens a dispute, or replaces a registered state older
        than it (a final one concludes at once). ``current``: the open dispute just read (else read here)."""
        signed = self._require_latest()
        dispute = current or self.dispute()
        if dispute is not None and signed.state.version <= dispute.agreed:
            raise RefusedUpdate(
                f"version {dispute.agreed} is registered already and ours is {signed.state.version}; answer its "
                "moves (progress) or conclude after the deadline"
            )
        registered = NO_REGISTRATION if dispute is None else dispute.registration
        return self._contract().register(self.params.as_tuple(), *_both(signed), registered.as_tuple(), sender=sender)

    def force(self, sender: Any) -> Any:
        """Put our proposal in flight (a move the counterpart has not countersigned) on-chain: registers
        the latest state both signed and moves on from it, or moves on from it if it is registered already.
        The counterpart then has a full challenge period to answer on-chain."""
        pending, latest = self._pending, self._require_latest()
        if pending is None or pending.state.is_final or pending.state.version != latest.state.version + 1:
            raise RefusedUpdate("no move of ours is in flight; propose_move() first (a final state is not forced)")
        state = pending.state
        assert isinstance(state, AppState) and isinstance(latest.state, AppState)
        move = Move.between(latest.state, state, self.side)
        signature = compact(self._own_sig(pending))
        dispute = self.dispute()
        if dispute is not None and dispute.state == latest.state:
            args = (self.params.as_tuple(), latest.state.as_tuple(), dispute.deadline, dispute.agreed)
            return self._contract().progress(*args, move.as_tuple(), signature, sender=sender)
        if dispute is not None and latest.state.version <= dispute.agreed:
            raise RefusedUpdate(
                f"version {dispute.agreed} is registered already, not our latest {latest.state.version}; answer "
                "the dispute's state (progress) instead"
            )
        registered = NO_REGISTRATION if dispute is None else dispute.registration
        return self._contract().register_and_progress(
            self.params.as_tuple(), *_both(latest), registered.as_tuple(), move.as_tuple(), signature, sender=sender
        )

    def progress(self, state: AppState, sender: Any, current: AppDispute | None = None) -> Any:
        """Answer the dispute on-chain: sign our move from the registered (or last moved) state to ``state``
        and submit it. Refused unless the app accepts it, and when we signed another state of that version
        as a proposal (a party never signs two states of one version: ``force`` that one instead).
        ``current``: the open dispute just read (else read here)."""
        dispute = current or self.dispute()
        if dispute is None:
            raise RefusedUpdate("no dispute is open; moves go off-chain (propose_move), or force() ours")
        try:
            move = Move.between(dispute.state, state, self.side)
        except InvalidState as exc:
            raise RefusedUpdate(f"not a move from the registered state: {exc}") from None
        ours = self.store.state(self.channel_id, state.version)
        if ours is not None and ours.state != state:
            raise RefusedUpdate(
                f"we signed another state of version {state.version} already; force() it instead of signing a second"
            )
        self.check_move(dispute.state, state, self.side)
        signature = compact(self._signer.sign(self.digest(state)))
        args = (self.params.as_tuple(), dispute.state.as_tuple(), dispute.deadline, dispute.agreed)
        return self._contract().progress(*args, move.as_tuple(), signature, sender=sender)

    def conclude(self, sender: Any, current: AppDispute | None = None) -> Any:
        """Conclude the dispute after its deadline: both sides are paid by the registered (or last moved)
        state. ``current``: the open dispute just read (else read here)."""
        dispute = current or self.dispute()
        if dispute is None:
            raise RefusedUpdate("no dispute is open; register() first, or close() with a final state")
        args = (self.params.as_tuple(), dispute.state.as_tuple(), dispute.deadline, dispute.agreed)
        return self._contract().conclude(*args, sender=sender)

    def withdraw(self, sender: Any, receiver: str | None = None) -> Any:
        """Collect ``sender``'s credit in the channel's asset (a payout the adjudicator could not push)."""
        receiver = receiver or str(sender.address)
        return self._contract().withdraw(self.params.asset, receiver, sender=sender)


def _both(signed: SignedState) -> tuple[Any, ...]:
    """The (state, sig_a, sig_b) arguments of close and register."""
    sig_a, sig_b = signed.signatures()
    return signed.state.as_tuple(), compact(sig_a), compact(sig_b)


class _NoKey:
    """The signer of a watch-only view: it names the channel's owner and signs nothing."""

    def __init__(self, address: str) -> None:
        self.address = address

    def sign(self, digest: bytes) -> bytes:
        raise RefusedUpdate(
            "a watch-only view of an app channel holds no key and signs nothing; restore the channel with its "
            "owner's key (AppChannel.restore) to move"
        )
