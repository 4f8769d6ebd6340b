"""The runs on every label against the published results their dataset config cites.

A reproduction is judged on the full-label cells only: per metric that has references (AUROC,
accuracy), a table of each variant and protocol with its mean over seeds, t-interval and
per-seed values, and its difference from each reference; and a figure with the seeds, the means
with their intervals and the references as vertical lines. The runs carry only the references
of their own image size (`dataset.size`), so every one they carry is shown. A reference that
says how it was trained (`protocol`) is drawn in the colour of the protocol it compares with
like for like (an end-to-end network with `classifier` and `finetune`, a linear probe with
`linear`, k-NN with `knn`), grey when no row of the figure has that protocol.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from medssl.study.report.cells import Study, reference_notes, reported
from medssl.study.report.document import Block, Heading, Table
from medssl.study.report.document import Figure as FigureBlock
from medssl.study.report.figures import COLOURS, FONT_SIZE, REFERENCE_STYLES, _png, reference_label
from medssl.study.report.metrics import REFERENCE_PROTOCOLS, display_name, name_of, protocol_of
from medssl.study.report.stats import level_text
from medssl.study.report.tables import cell_text

ALL_LABELS = 1.0


def reference_blocks(study: Study, dataset: str, metrics: list[str], suffix: str) -> list[Block]:
    """The section, or nothing when no full-label run carries a reference for these metrics."""
    compared = _compared(study, dataset, metrics)
    if not compared:
        return []
    blocks: list[Block] = [Heading("Against the published references (all labels)", 3)]
    for name, keys in compared.items():
        blocks += [Heading(f"test {display_name(name)}", 4), _table(study, dataset, keys)]
    png = references_png(study, dataset, compared)
    if png is not None:
        caption = f"{dataset}: the runs on every label against the published references"
        blocks.append(FigureBlock(f"references{suffix}.png", png, caption))
    return blocks


def _compared(study: Study, dataset: str, metrics: list[str]) -> dict[str, list[str]]:
    """Test metric keys with references, grouped by metric name (`auroc`: every protocol's)."""
    if ALL_LABELS not in study.fractions_in(dataset):
        return {}
    grouped: dict[str, list[str]] = {}
    # The trained network first: it is what the published baselines report.
    for key in sorted(metrics, key=lambda k: protocol_of(k) != "classifier"):
        if key.startswith("test/") and study.references(dataset, key):
            grouped.setdefault(name_of(key), []).append(key)
    return grouped


def _rows(study: Study, dataset: str, keys: list[str]):
    """(label, cell, key) of every variant's full-label cell, protocol by protocol."""
    for key in keys:
        for variant in study.variants_in(dataset):
            cell = study.cell(dataset, variant, ALL_LABELS)
            # A variant without the protocol (an SSL encoder has no `classifier`) has no row;
            # a cell whose runs all failed keeps one, to show it.
            if cell is not None and reported(cell.runs, key):
                yield f"{variant.label}, {protocol_of(key)}", cell, key


def _table(study: Study, dataset: str, keys: list[str]) -> Table:
    references = study.references(dataset, keys[0])
    header = ["variant, protocol", f"mean ± {level_text(study.confidence)} CI (n)", "per seed"]
    header += [f"− {r.name or 'reference'} ({r.value:.3f})" for r in references]
    table = Table(header=header, rows=[])
    for label, cell, key in _rows(study, dataset, keys):
        summary = cell.estimate(key)
        seeds = ", ".join(f"{v:.3f}" for v in cell.values(key)) or "–"
        differences = [
            f"{summary.mean - r.value:+.3f}" if summary is not None else "–" for r in references
        ]
        table.rows.append([label, cell_text(cell, key), seeds, *differences])
    table.notes.append(
        f"Difference: our mean test {display_name(keys[0])} minus the published one; its "
        f"{level_text(study.confidence)} interval is ours (the published values are taken as "
        "exact)."
    )
    if any(r.protocol for r in references):
        table.notes.append(
            "Like for like: an end-to-end reference against the classifier and finetune rows, a "
            "linear probe against the linear rows, k-NN against the knn rows; the others set "
            "each row beside a differently trained network."
        )
    table.notes += reference_notes(references)
    return table


def references_png(study: Study, dataset: str, compared: dict[str, list[str]]) -> bytes | None:
    """A panel per metric, a row per variant and protocol: seeds (dots), mean and t-interval,
    coloured by protocol, and each reference as a vertical line."""
    rows_of = {name: list(_rows(study, dataset, keys)) for name, keys in compared.items()}
    references = {n: study.references(dataset, keys[0]) for n, keys in compared.items()}
    # One line style per reference in every panel; the legend (two lines each) sets the height.
    named = list(dict.fromkeys(r.name for found in references.values() for r in found))
    height = 1.2 + max(0.28 * max(map(len, rows_of.values())), 0.34 * len(named))
    fig = Figure(figsize=(3.4 * len(compared) + 4.6, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(compared), squeeze=False, sharey=True)[0]
    protocols = list(dict.fromkeys(protocol_of(k) for keys in compared.values() for k in keys))
    drawn = False
    for ax, name in zip(axes, compared):
        rows = rows_of[name]
        for y, (_, cell, key) in enumerate(rows):
            values, summary = cell.values(key), cell.estimate(key)
            if summary is None:
                continue
            drawn = True
            colour = COLOURS[protocols.index(protocol_of(key)) % len(COLOURS)]
            ax.scatter(values, [y + 0.15] * len(values), color=colour, alpha=0.5, s=16, zorder=3)
            ax.errorbar(summary.mean, y - 0.1, xerr=summary.half_width, fmt="o", color=colour,
                        capsize=3, zorder=4)  # fmt: skip
        for reference in references[name]:
            ax.axvline(
                reference.value,
                linestyle=REFERENCE_STYLES[named.index(reference.name) % len(REFERENCE_STYLES)],
                color=_line_colour(reference.protocol, protocols),
                label=reference_label(reference),
            )
        ax.set_yticks(range(len(rows)), [label for label, _, _ in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)  # the table's order, top to bottom
        ax.set_xlabel(f"test {display_name(name)}", fontsize=FONT_SIZE)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=FONT_SIZE - 1)
    if not drawn:
        return None
    _legend(axes)
    fig.suptitle(
        f"{dataset}, every label: seeds (dots), mean ± {level_text(study.confidence)} "
        "t-interval; lines: published",
        fontsize=FONT_SIZE + 1,
    )
    return _png(fig)


def _legend(axes) -> None:
    """Every panel's reference lines, each once, beside the last panel."""
    lines: dict[str, object] = {}
    for ax in axes:
        for line, label in zip(*ax.get_legend_handles_labels()):
            lines.setdefault(label, line)
    axes[-1].legend(
        list(lines.values()),
        list(lines),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=FONT_SIZE - 2,
        frameon=False,
    )


def _line_colour(reference_protocol: str | None, protocols: list[str]) -> str:
    """The colour of the first drawn protocol the reference compares with like for like."""
    for protocol in REFERENCE_PROTOCOLS.get(reference_protocol, ()):
        if protocol in protocols:
            return COLOURS[protocols.index(protocol) % len(COLOURS)]
    return "0.3"
