"""Bounds shared with contracts/LedgerAdjudicator.vy; tests compare them with the contract's getters."""

from typing import Final

ETH: Final = "0x0000000000000000000000000000000000000000"
MIN_CHALLENGE_DURATION: Final = 3600
MAX_CHALLENGE_DURATION: Final = 30 * 24 * 3600
MAX_LOCKS: Final = 16
MAX_AMOUNT: Final = 2**120 - 1
MAX_VERSION: Final = 2**64 - 1
# secp256k1 group order; signatures with s above half of it are malleable twins (EIP-2).
SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N: Final = SECP256K1_N // 2
LEDGER_DOMAIN_NAME: Final = "PerunLedger"
VIRTUAL_DOMAIN_NAME: Final = "PerunVirtual"
APP_DOMAIN_NAME: Final = "PerunApp"
# The most bytes of app data an app state carries (contracts/modules/app_types.vy MAX_APP_DATA).
MAX_APP_DATA: Final = 512
DOMAIN_VERSION: Final = "1"
