"""The allocation budget of a checkpoint load: memory bounded by what the file holds, not by what it claims.

Every stand-in of :mod:`alignjax.io.safe_pickle` / :mod:`alignjax.io.torch_pickle` that allocates by an argument
(``bytearray(n)``, numpy arrays, containers built from other objects) and every torch storage read by
:mod:`alignjax.io.torch_file` calls :func:`charge` *before* allocating; over the budget it raises
:class:`CheckpointError` naming the file and what asked for the memory.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
from typing import Any

from alignjax.errors import CheckpointError

__all__ = ['ALLOC_SLACK', 'AllocationBudget', 'allocation_budget', 'charge', 'current_budget']

ALLOC_SLACK = 16 << 20  # what any load may allocate beyond twice the bytes its file holds


def _fmt_bytes(n: int) -> str:
    for unit, scale in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if n >= scale:
            return f'{n / scale:.1f} {unit}'
    return f'{n} bytes'


class AllocationBudget:
    """What a load may allocate for the objects a file describes: ``2 x file size + ALLOC_SLACK`` (plus
    :meth:`grant` for compressed zip members); :meth:`charge` refuses, before anything is allocated."""

    def __init__(self, path: Any, file_bytes: int):
        self.path, self.file_bytes = path, int(file_bytes)
        self.limit, self.used = 2 * self.file_bytes + ALLOC_SLACK, 0

    def grant(self, nbytes: int) -> None:
        self.limit += int(nbytes)

    def charge(self, nbytes: Any, what: str) -> None:
        nbytes = int(nbytes)
        if nbytes < 0 or self.used + nbytes > self.limit:
            raise CheckpointError(
                f'{self.path}: refusing to allocate {_fmt_bytes(max(nbytes, 0))} for {what}: the file holds '
                f'{_fmt_bytes(self.file_bytes)}, so at most {_fmt_bytes(self.limit)} in all may be allocated for '
                'its contents (the file is corrupt or malicious)'
            )
        self.used += nbytes


_BUDGET: contextvars.ContextVar[AllocationBudget | None] = contextvars.ContextVar('alignjax_budget', default=None)


@contextlib.contextmanager
def allocation_budget(path: Any, file_bytes: int | None):
    """Make a budget for ``path`` current; nested loads (embedded torch storages) share the outermost one."""
    current = _BUDGET.get()
    if current is not None or file_bytes is None:
        yield current
        return
    token = _BUDGET.set(AllocationBudget(path, file_bytes))
    try:
        yield _BUDGET.get()
    finally:
        _BUDGET.reset(token)


def current_budget() -> AllocationBudget | None:
    return _BUDGET.get()


def charge(nbytes: Any, what: str) -> None:
    """Charge an allocation to the current load's budget (a no-op outside a load)."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(nbytes, what)


def _stream_size(file: Any) -> int | None:
    if isinstance(file, io.BytesIO):
        return len(file.getbuffer())
    try:
        return os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
