"""The watchtower: answers stale registrations and concludes disputes for the channels of a store. What
it did comes back as the action records of ``perun_vyper.watchtower.actions``."""

from .actions import Action
from .watchtower import Watchtower, summary

__all__ = ["Action", "Watchtower", "summary"]
