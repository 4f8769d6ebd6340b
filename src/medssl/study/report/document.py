"""The report as a list of blocks, written once and rendered as markdown here and as HTML in
`html.py`, so the two files always say the same thing."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Heading:
    text: str
    level: int


@dataclass
class Paragraph:
    text: str


@dataclass
class BulletList:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) of best cells
    notes: list[str] = field(default_factory=list)  # sentences shown under the table


@dataclass
class Figure:
    filename: str
    png: bytes
    caption: str


Block = Heading | Paragraph | BulletList | Table | Figure


def to_markdown(blocks: list[Block]) -> str:
    return "\n".join(_markdown(block) for block in blocks)


def _markdown(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}\n"
    if isinstance(block, Paragraph):
        return f"{block.text}\n"
    if isinstance(block, BulletList):
        return "".join(f"- {item}\n" for item in block.items)
    if isinstance(block, Figure):
        return f"![{block.caption}]({block.filename})\n"
    return _markdown_table(block)


def _markdown_table(table: Table) -> str:
    def line(cells):
        return "| " + " | ".join(cells) + " |"

    rows = [
        [
            f"**{_escaped(text)}**" if (r, c) in table.bold else _escaped(text)
            for c, text in enumerate(row)
        ]
        for r, row in enumerate(table.rows)
    ]
    lines = [
        line(map(_escaped, table.header)),
        line(["---"] + ["---:"] * (len(table.header) - 1)),
        *map(line, rows),
    ]
    notes = ["", "\n\n".join(table.notes)] if table.notes else []
    return "\n".join(lines + notes) + "\n"


def _escaped(text: str) -> str:
    return text.replace("|", "\\|")
