# -*- test-case-name: tests.test_cli -*-
"""
The C{shadowgw} command: C{shadowgw check FILE} validates a configuration like C{krakend check}.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from shadowtwist.config import check

USAGE = """usage: shadowgw check FILE

  check FILE   validate a KrakenD configuration file: exit 0 and one OK line on a good file,
               exit 1 and every problem (file, JSON path, why) on a bad one.

To run the gateway: twistd -n shadowgw --config FILE (see twistd shadowgw --help)."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """
    Entry point of the C{shadowgw} console script.

    @param argv: the arguments after the program name (C{sys.argv[1:]} by default).
    @return: the exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "check":
        return check(args[1], print)
    print(USAGE, file=sys.stderr)
    return 0 if args in (["-h"], ["--help"]) else 2


if __name__ == "__main__":
    sys.exit(main())
