"""`report.html`: the report's blocks as one self-contained page that opens offline.

Figures are embedded as base64 data URIs and the style sheet is inline; the page refers to
nothing outside itself.
"""

from __future__ import annotations

import base64
from functools import partial
from html import escape

from medssl.study.report.document import Block, BulletList, Figure, Heading, Paragraph, Table

# Text between tags needs only <, > and & escaped; attribute values also need quotes.
_text = partial(escape, quote=False)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
p.note { color: #555; font-size: 0.88rem; max-width: 60rem; }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.88rem; }
"""


def to_html(title: str, blocks: list[Block]) -> str:
    body = "\n".join(_html(block) for block in blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_text(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _html(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_text(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_text(block.text)}</p>"
    if isinstance(block, BulletList):
        return "<ul>\n" + "".join(f"<li>{_text(item)}</li>\n" for item in block.items) + "</ul>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (
            f'<figure><img alt="{escape(block.caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_text(block.caption)}</figcaption></figure>"
        )
    return _html_table(block)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{_text(cell)}</th>" for cell in table.header)
    rows = []
    for r, row in enumerate(table.rows):
        cells = "".join(
            f"<td><strong>{_text(cell)}</strong></td>"
            if (r, c) in table.bold
            else f"<td>{_text(cell)}</td>"
            for c, cell in enumerate(row)
        )
        rows.append(f"<tr>{cells}</tr>")
    notes = "".join(f'\n<p class="note">{_text(note)}</p>' for note in table.notes)
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + f"\n</tbody>\n</table>{notes}"
    )
