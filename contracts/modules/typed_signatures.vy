# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title EIP-712 domain and signature recovery
@custom:contract-name typed_signatures
@license Apache-2.0
@notice Shared by every Perun adjudicator: builds the EIP-712 domain
        separator that binds a signature to the chain id and to the
        contract's address, turns a struct hash into the digest that
        participants sign, and recovers signers while refusing every
        malformed or malleable signature.
@custom:security The domain separator is cached for the deployment chain
                 and rebuilt whenever `chain.id` differs (a fork), so a
                 signature made for one chain never verifies on another.
                 `_recover` returns the zero address for any signature it
                 refuses; `_check_signers` compares the result with the
                 expected signers, which its callers guarantee are
                 non-zero (never with an arbitrary address).
"""


# @dev A compact (EIP-2098) secp256k1 signature: two static ABI words, where a
# `Bytes[65]` argument takes five (offset, length and three padded words).
struct Signature:
    # @dev The `r` value of the signature.
    r: bytes32
    # @dev `s` in bits 0-254, `v - 27` (0 or 1) in bit 255.
    vs: bytes32


# @dev The EIP-712 domain type: name, version, chain id and the verifying
# contract. No salt: the contract address already makes each deployment unique.
_DOMAIN_TYPE_HASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


# @dev Half the secp256k1 group order. Signatures with a larger `s` are the
# malleable twins of valid ones (EIP-2) and are refused.
# 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_HALF_ORDER: constant(uint256) = (
    57_896_044_618_658_097_711_785_492_504_343_953_926_418_782_139_537_452_191_302_581_570_759_080_747_168
)


# @dev `_check_signers`: both signatures are by the expected signers.
SIGNED: constant(uint256) = 0


# @dev `_check_signers`: a signature is malformed, malleable or does not recover.
INVALID_SIGNATURE: constant(uint256) = 1


# @dev `_check_signers`: a valid signature by someone else than expected.
WRONG_SIGNER: constant(uint256) = 2


# @dev The EIP-5267 field bitmap: name, version, chainId, verifyingContract.
_DOMAIN_FIELDS: constant(bytes1) = 0x0F


# @dev The low 255 bits of a compact signature's `vs` word: `s`.
_S_MASK: constant(uint256) = 2**255 - 1


# @dev The chain id the cached separator was built for.
_CACHED_CHAIN_ID: immutable(uint256)


# @dev The domain separator for `_CACHED_CHAIN_ID` and this contract.
_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)


# @dev keccak256 of the domain name, precomputed for rebuilding the separator.
_HASHED_NAME: immutable(bytes32)


# @dev keccak256 of the domain version, precomputed for rebuilding the separator.
_HASHED_VERSION: immutable(bytes32)


# @dev The domain name, returned by `eip712Domain` for wallets and tools (the
# adjudicators' names have 12 characters at most).
_NAME: immutable(String[32])


# @dev The domain version, returned by `eip712Domain` for wallets and tools.
_VERSION: immutable(String[20])


@deploy
@payable
def __init__(name_: String[32], version_: String[20]):
    """
    @dev Caches the domain separator for the deployment chain.
    @param name_ The EIP-712 domain name, e.g. "PerunLedger".
    @param version_ The EIP-712 domain version, e.g. "1".
    """
    _NAME = name_
    _VERSION = version_
    _HASHED_NAME = keccak256(name_)
    _HASHED_VERSION = keccak256(version_)
    _CACHED_CHAIN_ID = chain.id
    _CACHED_DOMAIN_SEPARATOR = self._build_domain_separator()


@external
@view
def eip712Domain() -> (
    bytes1, String[32], String[20], uint256, address, bytes32, DynArray[uint256, 1]
):
    """
    @notice The EIP-712 domain of this contract, as specified by EIP-5267.
    @return fields The bitmap of the fields in use (0x0f: name, version,
            chainId, verifyingContract).
    @return name The domain name.
    @return version The domain version.
    @return chainId The current chain id.
    @return verifyingContract This contract's address.
    @return salt Unused, zero.
    @return extensions Unused, empty.
    """
    return (_DOMAIN_FIELDS, _NAME, _VERSION, chain.id, self, empty(bytes32), empty(DynArray[uint256, 1]))


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @notice The EIP-712 domain separator for the current chain.
    @return The domain separator.
    """
    return self._domain_separator()


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev Returns the cached separator unless the chain id changed (a fork).
    @return The domain separator for the current chain.
    """
    if chain.id == _CACHED_CHAIN_ID:
        return _CACHED_DOMAIN_SEPARATOR
    return self._build_domain_separator()


@internal
@view
def _build_domain_separator() -> bytes32:
    """
    @dev Hashes the domain for the current chain id and this address.
    @return The domain separator.
    """
    return keccak256(
        abi_encode(_DOMAIN_TYPE_HASH, _HASHED_NAME, _HASHED_VERSION, chain.id, self)
    )


@internal
@view
def _typed_digest(struct_hash: bytes32) -> bytes32:
    """
    @dev The EIP-712 digest of a struct in this contract's domain.
    @param struct_hash The EIP-712 `hashStruct` of the signed message.
    @return The 32-byte digest that signers sign.
    """
    return keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))


@internal
@pure
def _digest(domain_separator: bytes32, struct_hash: bytes32) -> bytes32:
    """
    @dev The EIP-712 digest of a struct in a given domain: what
         `_typed_digest` computes with this contract's separator, for a
         harness that reports the digests of another contract's domain.
    @param domain_separator The domain separator.
    @param struct_hash The EIP-712 `hashStruct` of the signed message.
    @return The 32-byte digest that signers sign.
    """
    return keccak256(concat(b"\x19\x01", domain_separator, struct_hash))


@internal
@pure
def _recover(digest: bytes32, signature: Signature) -> address:
    """
    @dev Recovers the signer of `digest` from a compact EIP-2098
         signature. Returns the zero address for anything it refuses: `r`
         or `s` zero, a high `s` (the malleable twin), or a point that does
         not recover. `v` is the top bit of `vs` plus 27, so it is always
         27 or 28.
    @param digest The signed 32-byte digest.
    @param signature The signature: `r`, and `s` with `v - 27` in bit 255.
    @return The signer, or the zero address if the signature is refused.
    """
    r: uint256 = convert(signature.r, uint256)
    vs: uint256 = convert(signature.vs, uint256)
    s: uint256 = vs & _S_MASK
    if r == 0 or s == 0 or s > _HALF_ORDER:
        return empty(address)
    # vs >> 255 is 0 or 1: v is 27 or 28 and cannot overflow.
    return ecrecover(digest, unsafe_add(vs >> 255, 27), r, s)


@internal
@view
def _check_signers(
    struct_hash: bytes32, sig_a: Signature, signer_a: address, sig_b: Signature, signer_b: address
) -> uint256:
    """
    @dev The one signature check of every adjudicator: whether `signer_a`
         signed the struct with `sig_a` and `signer_b` with `sig_b`, in
         this contract's domain. Returns a code instead of reverting, so
         each adjudicator keeps its own reasons (`ledger: ...`,
         `virtual: ...`) for a code other than `SIGNED`.
    @param struct_hash The EIP-712 `hashStruct` of the signed message.
    @param sig_a The first signature.
    @param signer_a Who must have made it (never the zero address).
    @param sig_b The second signature.
    @param signer_b Who must have made it (never the zero address).
    @return `SIGNED`, or for the first signature that fails
            `INVALID_SIGNATURE` (refused by `_recover`) or `WRONG_SIGNER`
            (valid, by someone else).
    """
    digest: bytes32 = self._typed_digest(struct_hash)
    # A refused signature recovers the zero address, which is never an
    # expected signer: one comparison per signature when both are good.
    signer: address = self._recover(digest, sig_a)
    if signer == signer_a:
        signer = self._recover(digest, sig_b)
        if signer == signer_b:
            return SIGNED
    if signer == empty(address):
        return INVALID_SIGNATURE
    return WRONG_SIGNER
