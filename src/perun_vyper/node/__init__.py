"""The hub as a network service and its wallet-side client (docs/API.md): JSON-RPC 2.0 over WebSocket.

- ``rpc``: the envelope, the error codes, the mapping of perun_vyper's exceptions to them;
- ``schema``: the typed messages (msgspec) and their conversion to perun_vyper's types;
- ``auth``: the login challenge a wallet signs;
- ``server``: ``HubServer``, Ingrid's ``Hub`` served to wallets;
- ``wallet``: ``HubClient``, a wallet's channels with a hub;
- ``guard``: ``HubGuard``, the hub's watchtower run inside the service (``chain.disputed``); imported
  on its own (``perun_vyper.node.guard``) because it needs Ape, which a wallet does not.
"""

from .server import HubServer, Limits, Policy
from .wallet import HubClient

__all__ = ["HubClient", "HubServer", "Limits", "Policy"]
