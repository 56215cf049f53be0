"""
Run the whole trial suite and end with one plain summary line ("N passed, N failed").

Used by C{make test} (and so by C{.ci/run}); trial's own closing line is kept above it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys


def main(argv: list) -> int:
    """
    Run trial on C{argv} (default: the C{tests} package) and summarise.

    @return: trial's exit status.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, "-m", "twisted.trial", "--temp-directory", "_trial_temp"] + (argv or ["tests"])
    process = subprocess.run(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.decode("utf-8", "replace")
    sys.stdout.write(output)
    counts = dict.fromkeys(("successes", "failures", "errors", "skips", "expectedFailures",
                            "unexpectedSuccesses"), 0)
    summary = re.findall(r"^(?:PASSED|FAILED) \(([^)]*)\)\s*$", output, re.M)
    if summary:
        for item in summary[-1].split(","):
            name, _, value = item.strip().partition("=")
            counts[name] = int(value)
    failed = counts["failures"] + counts["errors"] + counts["unexpectedSuccesses"]
    if not summary and process.returncode:
        failed = max(failed, 1)
    print(f"{counts['successes'] + counts['expectedFailures']} passed, {failed} failed, "
          f"{counts['skips']} skipped")
    return process.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
