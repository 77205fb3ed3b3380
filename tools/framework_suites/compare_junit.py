"""Two pytest junit XML files, A (baseline) and B (swap): the outcome counts of each, and the
tests that fail or error in B but pass in A.

    python compare_junit.py base.xml swap.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter


def outcomes(path: str) -> dict[str, tuple[str, str]]:
    """``{test id: (outcome, message)}`` of a junit XML file."""
    found = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status, message = child.tag, child.get("message") or ""
        found[test] = (status, message)
    return found


def main() -> None:
    base, swap = outcomes(sys.argv[1]), outcomes(sys.argv[2])
    for name, results in (("A", base), ("B", swap)):
        print(name, dict(Counter(status for status, _ in results.values())))
    for test, (status, message) in sorted(swap.items()):
        if status in ("failure", "error") and base.get(test, ("missing",))[0] == "passed":
            print("SWAP-ONLY", status, test, "|", message.replace("\n", " ")[:300])
    for test, (status, _) in sorted(base.items()):
        if status == "passed" and test not in swap:
            print("MISSING-IN-B", test)


if __name__ == "__main__":
    main()
