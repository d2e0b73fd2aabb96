"""Write the run facts of every chapter into book/making-of.md, from the chapters' run reports.

Each chapter ends with a run report (labutils.report.RunRecord.report) printed in its last code
cell. This script reads those stored outputs and writes one table row per chapter (device, CPU,
native bf16, mixed precision, channels_last, wall time, date) between the markers of
book/making-of.md, so that the appendix always shows what the chapters' own reports say.

Usage: python scripts/making_of.py           # rewrite the table
       python scripts/making_of.py --check   # exit 1 if the page disagrees with the notebooks
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "making-of.md"
START, END = "<!-- run-facts:start -->", "<!-- run-facts:end -->"
COLUMNS = ["mode", "device", "CPU", "native bf16 CPU", "mixed precision", "channels_last",
           "wall time (s)", "finished (UTC)"]


def run_report(notebook: Path) -> dict[str, str]:
    """The key/value lines of the run report printed by the notebook's last code cell."""
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    text = "".join("".join(o.get("text", "")) for o in cells[-1].get("outputs", [])
                   if o.get("output_type") == "stream")
    if "Run report" not in text:
        raise ValueError(f"{notebook.name}: its last code cell printed no run report; "
                         f"execute it (bash scripts/execute.sh {notebook.relative_to(ROOT)})")
    lines = text.split("Run report", 1)[1].splitlines()
    return {m.group(1): m.group(2) for m in (re.match(r"  (\S.*?)\s{2,}(\S.*)$", l) for l in lines)
            if m}


def table(notebooks: list[Path]) -> str:
    """The markdown table of run facts, one row per chapter."""
    head = "| chapter | " + " | ".join(c.replace("wall time (s)", "wall time") for c in COLUMNS)
    rows = [head + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for nb in notebooks:
        facts = run_report(nb)
        cells = []
        for column in COLUMNS:
            value = facts.get(column, "not recorded")
            if column == "wall time (s)" and value != "not recorded":
                value = f"{float(value) / 60:.1f} min"
            cells.append(value)
        link = f"[{nb.stem}](../notebooks/{nb.name})"
        rows.append(f"| {link} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render(page: str, notebooks: list[Path]) -> str:
    if START not in page or END not in page:
        raise ValueError(f"{PAGE.name} needs the markers {START} and {END}")
    before, rest = page.split(START, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{table(notebooks)}\n{END}{after}"


def main(argv: list[str]) -> int:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    page = PAGE.read_text()
    want = render(page, notebooks)
    if "--check" in argv:
        if want != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/making_of.py")
            return 1
        return 0
    PAGE.write_text(want)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
