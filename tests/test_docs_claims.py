"""The README and docs/ say only what was measured, and name only what exists.

Every study number they quote (a value with a ± interval) sits in a paragraph, list item or
table row that names an `experiments/<study>/` folder (or under the lines that introduce its
list or table, when it names none), and appears, sign, mean and interval as written, in that
study's `report.md` or `summary.csv`. The README's Python version is the one pyproject.toml
requires; every `python -m medssl...` module, `make` target, console script, repository path
and relative link the pages name exists.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
EXPERIMENTS = REPO / "experiments"
README_MAX_LINES = 150
REPORT_DECIMALS = 3  # what the sweep report writes; a quote may not be coarser

# "0.884 ± 0.029", "+0.156 ± 0.076", "−0.007 ± 0.023" (a typographic or ASCII minus).
QUOTE = re.compile(r"(?<![\w.])(?P<mean>[+\-−]?\d+(?:\.\d+)?)\s*±\s*(?P<interval>\d+(?:\.\d+)?)")
# An interval with no number before it ("± 0.04") cannot be traced: flagged on its own.
INTERVAL = re.compile(r"±\s*\d")
CITED_STUDY = re.compile(r"experiments/([A-Za-z0-9_]+)/")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"(?<![\w./<-])((?:src|tests|benchmarks|conf|experiments|docs)/[\w./-]*)")


@dataclass(frozen=True)
class Quote:
    """One "mean ± interval" as written: sign ('+', '-' or ''), and the digits of each."""

    sign: str
    mean: str
    interval: str

    @classmethod
    def parse(cls, mean: str, interval: str) -> Quote:
        mean = mean.replace("−", "-")
        sign = mean[0] if mean[0] in "+-" else ""
        return cls(sign=sign, mean=mean.lstrip("+-"), interval=interval)

    def __str__(self) -> str:
        return f"{self.sign}{self.mean} ± {self.interval}"


@dataclass(frozen=True)
class Claim:
    """The smallest piece of a page that must name its study: a paragraph, a list item or a
    table row. `lead` is what may name the study for it instead: the lines that introduce a
    list, or the paragraph just above a table."""

    page: Path
    line: int
    text: str
    lead: str = ""

    def where(self) -> str:
        shown = self.page.relative_to(REPO) if self.page.is_relative_to(REPO) else self.page
        return f"{shown}:{self.line}"

    def studies(self) -> set[str]:
        return set(CITED_STUDY.findall(self.text)) or set(CITED_STUDY.findall(self.lead))


LIST_ITEM = re.compile(r"^ {0,3}(?:[-*]|\d+\.) ")


def blocks(page: Path) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines, with the number of their first line."""
    found, lines, start = [], [], 0
    for number, line in enumerate([*page.read_text().splitlines(), ""], start=1):
        if line.strip():
            start = start or number
            lines.append(line)
        elif lines:
            found.append((start, lines))
            lines, start = [], 0
    return found


def claims(page: Path) -> list[Claim]:
    found, above = [], ""
    for start, lines in blocks(page):
        text = "\n".join(lines)
        if lines[0].lstrip().startswith("|"):  # a table: one claim per row
            found += [
                Claim(page=page, line=start + i, text=row, lead=above)
                for i, row in enumerate(lines)
            ]
        elif any(LIST_ITEM.match(line) for line in lines):  # a list: one claim per item
            first = next(i for i, line in enumerate(lines) if LIST_ITEM.match(line))
            lead = "\n".join(lines[:first])
            item_starts = [i for i, line in enumerate(lines) if LIST_ITEM.match(line)]
            for i, item_start in enumerate(item_starts):
                item_end = item_starts[i + 1] if i + 1 < len(item_starts) else len(lines)
                item = "\n".join(lines[item_start:item_end])
                found.append(Claim(page=page, line=start + item_start, text=item, lead=lead))
            if lead:
                found.append(Claim(page=page, line=start, text=lead))
        else:
            found.append(Claim(page=page, line=start, text=text))
        above = text
    return found


def quotes_in(text: str) -> list[Quote]:
    return [Quote.parse(m["mean"], m["interval"]) for m in QUOTE.finditer(text)]


def study_reports(study: str) -> list[Path]:
    folder = EXPERIMENTS / study
    return sorted([*folder.rglob("report.md"), *folder.rglob("summary.csv")])


def quotes_in_report(path: Path) -> set[Quote]:
    return set(quotes_in(path.read_text()))


def decimals(digits: str) -> int:
    return len(digits.partition(".")[2])


def found_in_summary(quote: Quote, path: Path) -> bool:
    """A summary.csv cell holds `<metric> mean` and `<metric> ci95`; the quote must be one
    cell's pair, rounded to the decimals it is written with, at least the report's."""
    if quote.sign == "+":  # summary.csv holds cells, not paired differences
        return False
    if min(decimals(quote.mean), decimals(quote.interval)) < REPORT_DECIMALS:
        return False
    written_mean = ("-" if quote.sign == "-" else "") + quote.mean
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            for column in row:
                if not column.endswith(" mean") or not row[column]:
                    continue
                interval = row.get(column[: -len(" mean")] + " ci95") or ""
                if not interval:
                    continue
                mean_text = f"{float(row[column]):.{decimals(quote.mean)}f}"
                interval_text = f"{float(interval):.{decimals(quote.interval)}f}"
                if mean_text == written_mean and interval_text == quote.interval:
                    return True
    return False


def traced(quote: Quote, study: str) -> bool:
    for path in study_reports(study):
        if path.suffix == ".md" and quote in quotes_in_report(path):
            return True
        if path.suffix == ".csv" and found_in_summary(quote, path):
            return True
    return False


def untraced_quotes(pages: list[Path]) -> list[str]:
    """Every study number of `pages` that the studies its claim names do not hold, as a
    message; an empty list when each is traced."""
    problems = []
    for claim in (claim for page in pages for claim in claims(page)):
        quotes = quotes_in(claim.text)
        if len(INTERVAL.findall(claim.text)) > len(quotes):
            problems.append(f"{claim.where()}: a ± interval without the mean it belongs to")
        if not quotes:
            continue
        studies = claim.studies()
        missing = sorted(s for s in studies if not (EXPERIMENTS / s).is_dir())
        if missing:
            problems.append(f"{claim.where()}: cites no such study {missing}")
        if not studies:
            problems.append(
                f"{claim.where()}: quotes {quotes[0]} but names no experiments/<study>/"
            )
            continue
        for quote in quotes:
            if not any(traced(quote, study) for study in studies):
                problems.append(
                    f"{claim.where()}: {quote} is in no report.md or summary.csv of {sorted(studies)}"
                )
    return problems


def test_every_study_number_is_in_the_report_of_the_study_it_cites():
    problems = untraced_quotes(PAGES)
    assert not problems, "\n".join(problems)


def test_the_pages_quote_study_numbers_at_all():
    """The check above is not vacuous: the pages do quote the studies."""
    assert sum(len(quotes_in(page.read_text())) for page in PAGES) >= 10


def test_the_tracing_rejects_a_changed_number_a_wrong_sign_and_a_missing_citation(tmp_path):
    """A quote passes only as its study wrote it: a changed digit, a flipped sign, another
    study's number, a coarser rounding or a missing citation fails."""
    cited = "VICReg beat it ([the study](experiments/label_efficiency_breastmnist_10seeds/))"
    cases = {
        "exact": (f"{cited}: +0.029 ± 0.017 at 10 %.", True),
        "typographic minus": (f"{cited}: −0.007 ± 0.023 at 100 %.", True),
        "a summary.csv cell": (f"{cited}: 0.811 ± 0.018.", True),
        "changed interval": (f"{cited}: +0.029 ± 0.018 at 10 %.", False),
        "flipped sign": (f"{cited}: −0.029 ± 0.017 at 10 %.", False),
        "another study's number": (f"{cited}: +0.031 ± 0.042 at 10 %.", False),
        "coarser than the report": (f"{cited}: 0.81 ± 0.02.", False),
        "a summary.csv cell to 4 decimals": (f"{cited}: 0.8111 ± 0.0181.", True),
        "another cell's interval": (f"{cited}: 0.811 ± 0.023.", False),
        "no study named": ("VICReg beat it: +0.029 ± 0.017 at 10 %.", False),
        "no such study": ("See experiments/nowhere/: +0.029 ± 0.017.", False),
        "interval alone": (f"{cited}, by ± 0.017.", False),
    }
    for name, (text, passes) in cases.items():
        page = tmp_path / f"{name.replace(' ', '_')}.md"
        page.write_text(f"# A page\n\n{text}\n")
        assert (not untraced_quotes([page])) == passes, name


def test_a_table_is_cited_by_the_paragraph_above_it(tmp_path):
    table = "| method | 10 % |\n|---|---|\n| vicreg − supervised | +0.029 ± 0.017 |\n"
    cited = tmp_path / "cited.md"
    cited.write_text(f"From experiments/label_efficiency_breastmnist_10seeds/:\n\n{table}")
    uncited = tmp_path / "uncited.md"
    uncited.write_text(f"From a study:\n\n{table}")
    assert not untraced_quotes([cited])
    assert untraced_quotes([uncited])


def test_each_list_item_is_traced_to_the_study_it_names(tmp_path):
    """One item's study does not vouch for another item's number; a list's lead line names
    the study for the items that name none."""
    ten, three = (
        "experiments/label_efficiency_breastmnist_10seeds/",
        "experiments/label_efficiency_breastmnist/",
    )
    crossed = tmp_path / "crossed.md"
    crossed.write_text(
        f"Results:\n- 10 seeds ({ten}): +0.029 ± 0.017\n- 3 seeds ({three}): +0.079 ± 0.042\n"
    )
    led = tmp_path / "led.md"
    led.write_text(f"From {ten}:\n- VICReg: +0.029 ± 0.017\n- SimCLR: +0.022 ± 0.021\n")
    assert untraced_quotes([crossed]) == [
        f"{crossed}:3: +0.079 ± 0.042 is in no report.md or summary.csv of "
        "['label_efficiency_breastmnist']"
    ]
    assert not untraced_quotes([led])


def test_the_readme_names_the_python_version_pyproject_requires():
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=\s*(\d+\.\d+)", requires.strip())
    assert minimum, f"requires-python {requires!r} is not a plain minimum"
    in_readme = re.findall(r"Python (\d+\.\d+) or newer", README.read_text())
    assert in_readme, "the README says which Python it needs"
    for page in PAGES:
        for named in re.findall(r"Python (\d+\.\d+) or newer", page.read_text()):
            assert named == minimum[1], f"{page.name} says Python {named}, pyproject {requires}"


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in README.read_text(), f"the README links no docs/{page.name}"


def code_text(page: Path) -> str:
    """Fenced code blocks and inline code spans of a page, one piece a line."""
    text = page.read_text()
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    unfenced = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return "\n".join([*fenced, *CODE_SPAN.findall(unfenced)])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_python_m_module_named_runs_as_a_command(page):
    for named in sorted(set(re.findall(r"python -m (medssl[\w.<>]*)", page.read_text()))):
        module, placeholder, _ = named.rstrip(".").partition(".<")
        spec = importlib.util.find_spec(module)
        assert spec and spec.origin, f"{page.name}: no module {module}"
        if placeholder:  # `medssl.cli.<name>` stands for the modules of a package
            assert spec.submodule_search_locations, f"{page.name}: {module} is not a package"
            continue
        source = Path(spec.origin).read_text()
        assert 'if __name__ == "__main__":' in source, f"{module} does nothing under python -m"


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, flags=re.M))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_make_target_named_is_in_the_makefile(page):
    named = set(re.findall(r"(?<![\w-])make\s+([A-Za-z][\w-]*)", code_text(page)))
    missing = sorted(named - makefile_targets())
    assert not missing, f"{page.name} names make targets the Makefile lacks: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_console_script_named_is_declared(page):
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    named = set(re.findall(r"(?<![\w./-])(medssl-[a-z]+)(?![\w-])", page.read_text()))
    missing = sorted(named - set(scripts))
    assert not missing, f"{page.name} names console scripts pyproject.toml lacks: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_path_named_exists(page):
    missing = sorted(
        path for path in set(REPO_PATH.findall(code_text(page))) if not (REPO / path).exists()
    )
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


def github_anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
    return {github_anchor(heading) for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not this repository
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        assert resolved.exists(), f"{page.name}: link to {target} does not resolve"
        if anchor:
            document = resolved / "README.md" if resolved.is_dir() else resolved
            assert anchor in anchors(document), f"{page.name}: no heading #{anchor} in {target}"
