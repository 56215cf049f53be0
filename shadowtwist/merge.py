# -*- test-case-name: tests.test_merge -*-
"""
Merging the answers of several primary backends into one response (KrakenD section 4).

Pure: no Twisted, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Part:
    """
    One backend's contribution to a response.

    @ivar data: the decoded and manipulated object, or C{None} when the backend failed or sent
        JSON C{null}.
    @ivar complete: whether this part is whole (a C{return_error_details} part is not).
    @ivar error: why the backend failed, or C{None}.
    @ivar status: the backend status that failed the part, when C{return_error_code} applies.
    """

    data: Optional[dict]
    complete: bool = True
    error: Optional[str] = None
    status: Optional[int] = None


@dataclass(frozen=True)
class Merged:
    """
    The merged result: C{data} is C{None} when every part failed.
    """

    data: Optional[dict]
    complete: bool
    errors: tuple = ()
    status: Optional[int] = None


def merge_parts(parts: Sequence[Part]) -> Merged:
    """
    Merge parts in arrival order: the first good part is the base and each later one overwrites
    its top-level keys, as KrakenD does (so in parallel mode the slowest backend wins a
    collision; use C{group} to avoid collisions).

    @param parts: the parts, in the order their backends answered (failed ones anywhere).
    @return: the merged data, whether it is complete, and the errors of the failed parts.
    """
    data: Optional[dict] = None
    complete = bool(parts)
    errors = []
    status = None
    for part in parts:
        if part.error is not None:
            errors.append(part.error)
            status = status or part.status
            complete = False
            continue
        if part.data is None:
            complete = False
            continue
        if data is None:
            data = dict(part.data)
        else:
            data.update(part.data)
        complete = complete and part.complete
    return Merged(data=data, complete=complete and data is not None, errors=tuple(errors),
                  status=status if data is None else None)
