"""Print each JUnit report's counts, then one closing line for them all, which names every run:

    tests/ on SQLite + memory://: 580 passed, 0 failed, 1 skipped
    tests/ on PostgreSQL + Redis: 580 passed, 0 failed, 1 skipped
    e2e/: 30 passed, 0 failed, 0 skipped
    summary: 1190 passed, 0 failed, 2 skipped (tests/ on SQLite + memory://: 580 passed, 0 failed; …)

The closing line starts "summary: N passed, N failed, N skipped" (CI reads it). A run of scripts/test
that left no report (pytest never got to write it) or ran no test counts as one failure.
"""
import pathlib
import sys
import xml.etree.ElementTree as ET

# scripts/test's reports, in the order it runs them; any other report is named by its file.
RUNS = {
    "tests-sqlite": "tests/ on SQLite + memory://",
    "tests-postgres": "tests/ on PostgreSQL + Redis",
    "e2e": "e2e/ on SQLite",
    "e2e-postgres": "e2e/ on PostgreSQL + Redis",
}


def counts(path: pathlib.Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) of one JUnit report; errors count as failures."""
    tests = failed = skipped = 0
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return tests - failed - skipped, failed, skipped


folder = pathlib.Path(sys.argv[1])
found = {p.stem: p for p in sorted(folder.glob("*.xml"))}
expected = list(RUNS) if found.keys() & RUNS.keys() else []  # a folder scripts/test wrote
names = expected + [n for n in found if n not in RUNS]
total = [0, 0, 0]
parts = []
for name in names:
    label = RUNS.get(name, name)
    if name not in found:
        passed, failed, skipped, note = 0, 1, 0, "no report"
    else:
        passed, failed, skipped = counts(found[name])
        note = None
        if passed + failed + skipped == 0:  # pytest's exit 5: scripts/test fails it too
            failed, note = 1, "no test ran"
    counted = f"{passed} passed, {failed} failed"
    print(f"{label}: {counted}, {skipped} skipped" + (f" ({note})" if note else ""))
    parts.append(f"{label}: {note or counted}")
    total = [total[0] + passed, total[1] + failed, total[2] + skipped]
print(f"summary: {total[0]} passed, {total[1]} failed, {total[2]} skipped ({'; '.join(parts)})")
