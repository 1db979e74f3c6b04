"""Print one closing line for every JUnit report in a folder: "summary: N passed, N failed, N skipped"."""
import pathlib
import sys
import xml.etree.ElementTree as ET

tests = failed = skipped = 0
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
print(f"summary: {tests - failed - skipped} passed, {failed} failed, {skipped} skipped")
