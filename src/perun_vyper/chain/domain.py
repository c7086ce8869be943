"""The EIP-712 domain an adjudicator answers (EIP-5267 ``eip712Domain()``), read before anything is signed.

A state signed for another chain or another contract is worthless there: the adjudicator refuses it as
``wrong signer``, but only when it is too late (at the on-chain close). Reading the domain from the
contract itself when a channel is opened, and refusing any difference, moves that error to the moment
before the first signature.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from ..core.codec import Domain
from ..core.constants import APP_DOMAIN_NAME, DOMAIN_VERSION, LEDGER_DOMAIN_NAME, VIRTUAL_DOMAIN_NAME
from ..errors import DeploymentError, InvalidParams

# Bits of EIP-5267's ``fields``: name, version, chainId, verifyingContract (no salt, no extensions).
DOMAIN_FIELDS = 0x0F
_KINDS = {"ledger": LEDGER_DOMAIN_NAME, "virtual": VIRTUAL_DOMAIN_NAME, "app": APP_DOMAIN_NAME}


def read_domain(contract: Any, kind: str) -> Domain:
    """The domain the adjudicator ``contract`` (an Ape contract object) answers, refused with
    ``DeploymentError`` unless it is a perun-vyper adjudicator of ``kind`` ('ledger', 'virtual' or 'app')."""
    address = to_checksum_address(str(contract.address))
    expected = _KINDS[kind]
    try:
        fields, name, version, chain_id, verifying, _salt, _extensions = contract.eip712Domain()
    except Exception:  # any revert or undecodable answer: whatever is there, it is not ours
        raise DeploymentError(
            f"{address} does not answer eip712Domain() like a perun-vyper {expected}; pass the address "
            "`ape run deploy` printed for this chain"
        ) from None
    got = Domain(str(name), str(version), int(chain_id), to_checksum_address(str(verifying)))
    fields_int = int.from_bytes(bytes(fields), "big") if not isinstance(fields, int) else fields
    ours = (got.name, got.version, fields_int) == (expected, DOMAIN_VERSION, DOMAIN_FIELDS)
    if not ours or got.verifying_contract != address:
        raise DeploymentError(
            f"{address} answers eip712Domain() as {got.describe()}, not a {expected} v{DOMAIN_VERSION} at its own "
            "address; pass the address `ape run deploy` printed for this chain"
        )
    return got


def check_domain(domain: Domain, contract: Any, kind: str) -> None:
    """Refuse (``InvalidParams``) a channel domain that differs from what its adjudicator answers."""
    actual = read_domain(contract, kind)
    if domain.as_tuple() != actual.as_tuple():
        raise InvalidParams(
            f"the channel's domain is {domain.describe()} but the adjudicator answers {actual.describe()}; "
            f"nothing was signed. Build it with Domain.{kind}(chain id, adjudicator address) for the chain you "
            "are connected to"
        )
