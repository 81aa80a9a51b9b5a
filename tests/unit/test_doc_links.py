"""The repository stands alone: every link in the README and docs resolves to a file
inside it (a clone has nothing beside it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return docs + sorted((ROOT / "examples").rglob("README.md"))


def test_every_doc_link_resolves_inside_the_repository() -> None:
    broken = []
    for doc in documents():
        text = doc.read_text()
        if "../shared" in text:
            broken.append(f"{doc.relative_to(ROOT)}: mentions ../shared")
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                broken.append(f"{doc.relative_to(ROOT)}: leaves the repository: {target}")
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert broken == []
    assert len(documents()) >= 4  # README, DESIGN, PLUGINS, BENCHMARKS at least


def test_the_design_and_plugin_docs_exist() -> None:
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    for name in ("pipeline_error", "params_error", "tether pipelines", "/api/v1/cloud/events"):
        assert name in design
    assert "tether.pipelines" in (ROOT / "docs" / "PLUGINS.md").read_text()
