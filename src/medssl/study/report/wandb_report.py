"""A W&B Report of a sweep, built with wandb-workspaces (`wandb_workspaces.reports.v2`): what a
reader would otherwise build by hand from the sweep's runs.

Title and description come from the experiment preset's question (the comment that opens
conf/experiment/<preset>.yaml). One run set per method, each filtered to the sweep's group,
feeds a scatter of the main metric against `label_frac` (log x) and a parallel-coordinates
panel over the swept keys; a bar chart per label fraction groups its runs by method (mean and
standard error over seeds); then the summary run's tables. Online the Report is saved and its
URL printed. Its specification is written to `wandb_report.json` beside the report either way;
offline nothing can be saved, the log says so, and a later `--wandb mode=online` creates it.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from medssl.atomic_files import write_json
from medssl.configs import config_dir
from medssl.errors import MedsslError
from medssl.study.report import SweepReport
from medssl.study.report.collect import Run
from medssl.study.report.tables import percent
from medssl.tracking import WandbTracker

log = logging.getLogger(__name__)

SPEC_FILE = "wandb_report.json"
TITLE_LENGTH = 128  # W&B's limit on a Report's title
# Override keys that name no result (Hydra's own, the preset, the machine's config).
NOT_SWEPT = ("hydra", "experiment", "local")


def preset_question(preset: str | None) -> str | None:
    """The opening comment of conf/experiment/<preset>.yaml, up to its example commands."""
    path = config_dir() / "experiment" / f"{preset}.yaml"
    if preset is None or not path.is_file():
        return None
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("# @package"):
            continue
        if not line.startswith("# "):
            break
        if line.startswith("#   "):  # the commands that follow the question
            break
        lines.append(line[2:].strip())
    return " ".join(lines) or None


def swept_keys(runs: list[Run]) -> list[str]:
    """The keys the sweep's command lines set to more than one value, as the runs' flat W&B
    config names them (`method`, `optimizer.base_lr`, `label_frac`, `seed`)."""
    values: dict[str, set[str]] = {}
    for run in runs:
        for override in run.overrides:
            key, _, value = override.partition("=")
            key = key.lstrip("+~")
            if key.split(".")[0].split("/")[0] not in NOT_SWEPT:
                values.setdefault(key, set()).add(value)
    return sorted(key for key, seen in values.items() if len(seen) > 1)


def build_report(report: SweepReport, *, project: str, entity: str, group: str, table_keys):
    """The Report object (nothing is sent: `save()` is the caller's)."""
    import wandb_workspaces.reports.v2 as wr

    study, metric = report.study, report.metrics[0] if report.metrics else None
    presets = [run.record.get("config/experiment") for run in study.runs]
    preset = next((p for p in presets if p and p != "None"), None)
    question = preset_question(preset)
    first = re.split(r"(?<=[?.])\s", question, maxsplit=1)[0] if question else None
    title = f"{preset}: {first}" if preset and first else f"Sweep report: {group}"
    blocks = [
        wr.H1(text=f"Sweep {group}"),
        wr.MarkdownBlock(text=_description(question, group, report)),
    ]
    if metric is not None:
        blocks += _panel_grids(wr, report, metric, project=project, entity=entity, group=group)
    if table_keys:
        blocks.append(wr.H2(text="Tables (the summary run, job_type=report)"))
        blocks += [
            wr.WeaveBlockSummaryTable(entity=entity, project=project, table_name=key)
            for key in table_keys
        ]
    return wr.Report(
        project=project,
        entity=entity,
        title=_short(title),
        description=question or "",
        blocks=blocks,
    )


def _panel_grids(wr, report: SweepReport, metric: str, *, project, entity, group) -> list:
    study = report.study
    methods = sorted({run.method for run in study.runs})
    in_group = f"Metric('Group') = '{group}'"
    by_method = [
        wr.Runset(
            entity=entity,
            project=project,
            name=method,
            filters=f"{in_group} and Config('method') = '{method}'",
        )
        for method in methods
    ]
    columns = [
        wr.ParallelCoordinatesPlotColumn(metric=wr.Config(k)) for k in swept_keys(study.runs)
    ]
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(metric)))
    grids = [
        wr.H2(text=f"{metric} by method and label fraction"),
        wr.PanelGrid(
            runsets=by_method,
            panels=[
                wr.ScatterPlot(
                    title=f"{metric} against label_frac, per method",
                    x=wr.Config("label_frac"),
                    y=wr.SummaryMetric(metric),
                    log_x=True,
                ),
                wr.ParallelCoordinatesPlot(title="swept keys", columns=columns),
            ],
        ),
    ]
    fractions = sorted({run.label_frac for run in study.runs})
    for frac in fractions:
        runset = wr.Runset(
            entity=entity,
            project=project,
            name=f"{percent(frac)} labels",
            filters=f"{in_group} and Config('label_frac') = {frac!r}",
        )
        bars = wr.BarPlot(
            title=f"{metric} at {percent(frac)} labels",
            metrics=[wr.SummaryMetric(metric)],
            groupby=wr.Config("method"),
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
        )
        grids.append(wr.PanelGrid(runsets=[runset], panels=[bars]))
    return grids


def report_spec(value):
    """A Report as plain JSON: every block, panel, run set and metric with its `type`, fields
    as wandb-workspaces names them (its private `_` fields left out)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: report_spec(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
        return {"type": type(value).__name__, **fields}
    if isinstance(value, (list, tuple)):
        return [report_spec(v) for v in value]
    if isinstance(value, dict):
        return {str(k): report_spec(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def publish_wandb_report(report: SweepReport, tracker: WandbTracker, *, group: str, table_keys):
    """Writes the Report's specification beside the report; online also saves the Report and
    prints its URL (returned), else says in one line that it was not created (returns the
    specification's path)."""
    online = tracker.mode == "online"
    entity = tracker.entity or (_default_entity() if online else "")
    built = build_report(
        report, project=tracker.project, entity=entity, group=group, table_keys=table_keys
    )
    path = report.out / SPEC_FILE
    write_json(path, report_spec(built))
    if not online:
        log.info(
            "W&B Report not created (logger.mode=%s): its specification is in %s; "
            "`--wandb mode=online` creates it",
            tracker.mode,
            path,
        )
        return path
    try:
        built.save()
    except Exception as error:  # wandb raises its own types for login and network problems
        raise MedsslError(
            f"W&B could not save the Report ({type(error).__name__}: {error}); its specification "
            f"is in {path}."
        ) from None
    print(f"W&B Report: {built.url}")
    return built.url


def _description(question: str | None, group: str, report: SweepReport) -> str:
    study = report.study
    state = f"{len(study.finished)} runs finished, {len(study.failed)} failed"
    text = f"{question}\n\n" if question else ""
    level = f"{100 * study.confidence:g} %"
    return text + (
        f"Runs of the W&B group `{group}` ({state}); the tables are the sweep report's, with "
        f"{level} t-intervals over seeds."
    )


def _short(title: str) -> str:
    title = re.sub(r"\s+", " ", title).strip()
    return title if len(title) <= TITLE_LENGTH else title[: TITLE_LENGTH - 1] + "…"


def _default_entity() -> str:
    """The logged-in user's entity; a missing login or network is one sentence."""
    import wandb

    try:
        return wandb.Api().default_entity
    except Exception as error:  # wandb raises its own types for login and network problems
        raise MedsslError(
            f"W&B gave no default entity ({type(error).__name__}: {error}); log in "
            "(`wandb login`) or name one: `--wandb mode=online entity=my-team`."
        ) from None
