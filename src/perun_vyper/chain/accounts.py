"""Ape accounts as channel signers: one key for transactions and for state signatures, no prompt per use.

A party signs a state per payment, thousands a second; Ape's own signing of a raw digest asks for a
confirmation every time (by design: a raw digest can be anything). So the key is taken out of the
account once, at start, and held as a ``Signer`` (libsecp256k1), the way a test account holds it:

- a test account (``TEST::n``) gives its key as it is;
- a keyfile account (``ape accounts import``) is decrypted once with its passphrase from Ape's
  environment variable ``APE_ACCOUNTS_<alias>_PASSPHRASE`` (or one prompt when a terminal is attached),
  and switched to Ape's autosign so its transactions go out unattended too;
- any other account (a hardware wallet, say) cannot sign thousands of states without a person, and is
  refused with what to use instead.

A raw private key is never read from a command line: commands take ``--account``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, TypeAlias

from ..core.keys import Signer
from ..errors import AccountError

if TYPE_CHECKING:
    from ape.api import AccountAPI

# What the clients take as "the key": a Signer, a 32-byte private key (bytes or hex), or an Ape account.
Key: TypeAlias = "Signer | bytes | str | AccountAPI"


def passphrase_variable(alias: str) -> str:
    """Ape's environment variable holding the passphrase of the keyfile account ``alias``."""
    return f"APE_ACCOUNTS_{alias}_PASSPHRASE"


def signer_of(key: Key | Any) -> Signer:
    """A ``Signer`` for ``key``: a Signer, a 32-byte private key (bytes or hex) or an Ape account (a test
    or keyfile account, see the module docstring). A keyfile account is set to send transactions
    without a prompt."""
    if isinstance(key, Signer):
        return key
    if isinstance(key, bytes | bytearray | str):
        return Signer(bytes(key) if not isinstance(key, str) else key)
    private_key = getattr(key, "private_key", None)
    if private_key is not None:  # a test account
        return Signer(str(private_key))
    if hasattr(key, "keyfile") and hasattr(key, "set_autosign"):
        return _unlock_keyfile(key)
    raise AccountError(
        f"account {getattr(key, 'address', key)} ({type(key).__name__}) cannot sign channel states without a "
        "person confirming each one; use a keyfile account (`ape accounts import`) with "
        "APE_ACCOUNTS_<alias>_PASSPHRASE set, or a test account"
    )


def _unlock_keyfile(account: Any) -> Signer:
    """Decrypt a keyfile account once; Ape keeps it unlocked for transactions (autosign)."""
    from eth_account import Account  # Ape's own dependency; imported here to keep start-up light

    alias = account.alias
    variable = passphrase_variable(alias)
    passphrase = os.environ.get(variable)
    if passphrase is None:
        if not sys.stdin.isatty():
            raise AccountError(
                f"keyfile account '{alias}' is locked and no terminal is attached to ask for its passphrase; "
                f"set {variable} in the environment of this process"
            )
        import click

        passphrase = click.prompt(f"Passphrase of account '{alias}'", hide_input=True)
    if not passphrase:
        # Ape reads an empty passphrase as "none given" and prompts, which an unattended process cannot answer.
        raise AccountError(f"keyfile account '{alias}' has an empty passphrase; re-import it with a passphrase")
    try:
        private_key = Account.decrypt(account.keyfile, passphrase)
    except ValueError:
        raise AccountError(
            f"wrong passphrase for keyfile account '{alias}'; set {variable} to the passphrase it was imported with"
        ) from None
    signer = Signer(bytes(private_key))
    if signer.address.lower() != str(account.address).lower():
        raise AccountError(f"keyfile of account '{alias}' decrypts to {signer.address}, not {account.address}")
    # Ape's autosign decrypts once more; afterwards its transactions need no confirmation.
    account.set_autosign(True, passphrase=passphrase)
    return signer
