# -*- test-case-name: tests.test_merge -*-
"""
Merging the answers of several primary backends into one response (KrakenD section 4).

Pure: no Twisted, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence


@dataclass
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
    error_body: Optional[bytes] = None
    error_content_type: Optional[str] = None


@dataclass
class Merged:
    """
    The merged result: C{data} is C{None} when every part failed.

    @ivar status: the backend status to answer with (C{return_error_code}), when every part
        failed and one carried it; C{error_body} and C{error_content_type} come with it.
    """

    data: Optional[dict]
    complete: bool
    errors: tuple = ()
    status: Optional[int] = None
    error_body: Optional[bytes] = None
    error_content_type: Optional[str] = None


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
    carrier: Optional[Part] = None
    for part in parts:
        if part.error is not None:
            errors.append(part.error)
            if carrier is None and part.status is not None:
                carrier = part
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
    if data is not None or carrier is None or len(parts) > 1:
        # with several backends, KrakenD wraps a backend status in a merge error: 500
        return Merged(data=data, complete=complete and data is not None, errors=tuple(errors))
    return Merged(data=None, complete=False, errors=tuple(errors), status=carrier.status,
                  error_body=carrier.error_body, error_content_type=carrier.error_content_type)


def apply_static(merged: Merged, strategy: str, static: Mapping[str, Any]) -> Merged:
    """
    KrakenD's C{proxy.static}: when the strategy matches, the static keys are merged over the
    data (static wins); a missing response becomes the static data, incomplete. The errors are
    kept, and a response with data is answered with 200 whatever they are.

    @param strategy: C{always}, C{success}, C{complete}, C{errored} or C{incomplete}.
    """
    failed = bool(merged.errors) or (merged.data is None and merged.status is not None)
    matches = {
        "always": True,
        "success": not failed,
        "complete": not failed and merged.data is not None and merged.complete,
        "errored": failed,
        "incomplete": merged.data is None or not merged.complete,
    }[strategy]
    if not matches:
        return merged
    if merged.data is None:
        return Merged(data=dict(static), complete=False, errors=merged.errors)
    data = dict(merged.data)
    data.update(static)
    return Merged(data=data, complete=merged.complete, errors=merged.errors)
