"""EIP-712 hashing: the domain, type hashes and digests, computed with eth-abi and keccak.

This is the fast path (no typed-data JSON round trip); tests keep it equal to eth-account's
``encode_typed_data`` and to the adjudicator's ``state_hash`` / ``state_digest`` views.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_TYPE_HASH = keccak(text=DOMAIN_TYPE)


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one adjudicator deployment: signatures are bound to chain and address."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    @cached_property
    def separator(self) -> bytes:
        return keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    DOMAIN_TYPE_HASH,
                    keccak(text=self.name),
                    keccak(text=self.version),
                    self.chain_id,
                    to_checksum_address(self.verifying_contract),
                ],
            )
        )

    def digest(self, struct_hash: bytes) -> bytes:
        """The digest a signer signs for a struct with this ``hashStruct``."""
        return keccak(b"\x19\x01" + self.separator + struct_hash)

    def as_dict(self) -> dict[str, object]:
        """The domain in eth-account's typed-data form."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }
