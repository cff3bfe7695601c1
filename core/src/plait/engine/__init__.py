"""The execution engine: the executor, workers, task contexts and re-sealing stored values.

The records it decides from and the repository interface are in plait.records.
"""

from plait.engine._context import ContextBase
from plait.engine._reseal import reseal_stored, stored_keys_in_use
from plait.engine._runner import Recovery, Runner, owner_is_dead

__all__ = [
    "ContextBase",
    "Recovery",
    "Runner",
    "owner_is_dead",
    "reseal_stored",
    "stored_keys_in_use",
]
