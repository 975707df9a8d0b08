"""mkdocs hook: keep the nav complete while several people add pages.

mkdocs.yml lists every page in reading order, including pages still being written.
This hook drops listed pages that do not exist yet (so `mkdocs build --strict` passes)
and appends any page under docs/ that the nav forgot, under its folder's section, so no
page is ever left out of the nav. Both are logged; fix mkdocs.yml when you see them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.nav")

SECTIONS = {"modes": "Modes", "gears": "Gears", "links": "Links"}  # folder -> nav section title
APPEND_BEFORE = "API reference"  # unlisted top-level pages go just before this entry


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").capitalize()


def _prune(items: list[Any], docs: Path, listed: set[str]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        # a nav item is "page.md" or {title: "page.md" | [items]}
        title, value = next(iter(item.items())) if isinstance(item, dict) else (None, item)
        if isinstance(value, list):
            children = _prune(value, docs, listed)
            if children:
                kept.append({title: children})
        elif isinstance(value, str) and value.endswith(".md"):
            if (docs / value).is_file():
                listed.add(value)
                kept.append(item)
            else:
                log.info("nav: %s is listed but not written yet; left out", value)
        else:
            kept.append(item)  # external links and the like
    return kept


def on_config(config: Any) -> Any:
    if not config.get("nav"):
        return config
    docs = Path(config["docs_dir"])
    listed: set[str] = set()
    nav = _prune(config["nav"], docs, listed)
    excluded = {"hooks"}
    for path in sorted(docs.rglob("*.md")):
        rel = path.relative_to(docs).as_posix()
        if rel in listed or rel.split("/")[0] in excluded:
            continue
        log.info("nav: %s is not listed in mkdocs.yml; added", rel)
        entry = {_title(path): rel}
        folder = rel.split("/")[0] if "/" in rel else None
        section = SECTIONS.get(folder or "", (folder or "").capitalize())
        target = next((item for item in nav if isinstance(item, dict)
                       and isinstance(item.get(section), list)), None) if folder else None
        if target is not None:
            target[section].append(entry)
        elif folder:
            nav.insert(_index_of(nav, APPEND_BEFORE), {section: [entry]})
        else:
            nav.insert(_index_of(nav, APPEND_BEFORE), entry)
    config["nav"] = nav
    return config


def _index_of(nav: list[Any], title: str) -> int:
    for index, item in enumerate(nav):
        if isinstance(item, dict) and title in item:
            return index
    return len(nav)
