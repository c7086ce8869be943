"""Mutation testing of the shipped Vyper sources (``make mutation``, docs/MUTATION.md)."""
