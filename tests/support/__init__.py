"""What the test modules share besides fixtures (those stay in the conftest.py files).

- ``constants``: zero words, units, durations, byte codes, the revert reasons many modules check;
- ``checks``: assertions about the ledger's accounts and the events of its transactions;
- ``reverts``: the reason of a revert, and views that must revert with one;
- ``parties``: the fixed keys and fake domains of the off-chain (client) tests.
"""
