"""The docs stay true to the code."""

from __future__ import annotations

from pathlib import Path

from netgear.core.options import CORE_OPTIONS, options_table
from netgear.modes import MODES

DOCS = Path(__file__).resolve().parent.parent / "docs"
BEGIN, END = "<!-- options-table:begin -->", "<!-- options-table:end -->"


def generated_table() -> str:
    groups = [("Core", CORE_OPTIONS)]
    groups += [(f"{m.__name__} (`{m.key}`)", m.options) for m in MODES if m.options]
    return options_table(groups)


def test_options_reference_matches_the_code():
    text = (DOCS / "options.md").read_text()
    embedded = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert embedded == generated_table().strip(), (
        "docs/options.md is out of date: run `python tests/test_docs.py` to regenerate it"
    )


if __name__ == "__main__":
    path = DOCS / "options.md"
    head, rest = path.read_text().split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{generated_table()}\n{END}{tail}")
    print(f"rewrote {path}")


def test_public_api_is_sorted_and_importable():
    import netgear

    assert netgear.__all__ == sorted(netgear.__all__)
    for name in netgear.__all__:
        assert hasattr(netgear, name), name
