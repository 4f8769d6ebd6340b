"""Which recipe each run is, named by what sets it apart from the other runs of the report.

Runs that agree on everything but their seeds are one recipe. A recipe's name is its method
plus what else differs, written as the user would override it: `augmentation=byol` when a
config group's option differs (not the dozen keys that come with that option), and
`augmentation.blur=None` for a key that differs between runs of the *same* options. Within one
set of options the recipe most runs share is the reference and shows no key at all, so an
ablation reads `simclr`, `simclr, augmentation.blur=None`, `simclr, augmentation=byol`.
A group's option is named where it departs from the config's default for that group, so a
sweep that sets `augmentation=` on every command line still names its default plainly.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass

from medssl.config_roles import is_axis, shapes_results
from medssl.study.report.collect import Run

# Groups with a place of their own in the report: the method leads every name, the dataset
# has its own section.
NAMED_ELSEWHERE = ("method", "dataset")
# A group's option that the others depart from, whatever the run counts (conf/ablation/recipe).
BASELINE_OPTIONS = {"ablation": "recipe"}
ABSENT = "unset"


@dataclass(frozen=True, order=True)
class Variant:
    """A recipe of the report: `parts` is what sets it apart, e.g. `("augmentation=byol",)`."""

    method: str
    parts: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return ", ".join((self.method, *self.parts))

    @property
    def is_supervised(self) -> bool:
        """The from-scratch baseline (`Supervised`: its class name in runs before `config/*`)."""
        return self.method.lower() == "supervised"


def names_a_variant(key: str) -> bool:
    """A key whose differences name a recipe: it shapes results (medssl.config_schema.ROLES)
    and is not one of the axes a study varies within a recipe (seeds, label fraction)."""
    return shapes_results(key) and not is_axis(key)


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """Dotted keys; a sub-config also stands for itself, so `blur: null` is one change."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat[path] = _component_name(value)
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = _frozen(value)
    return flat


def label_variants(runs: list[Run]) -> list[Variant]:
    """The variant of each run, in the order of `runs`."""
    contexts = [tuple(sorted(run.choices.items())) for run in runs]
    recipes = [_recipe(run) for run in runs]
    references = _reference_recipes(runs, contexts, recipes)
    choice_parts = _choice_parts(runs)
    variants = []
    for run, context, recipe, parts in zip(runs, contexts, recipes, choice_parts):
        reference = references.get(context)
        if recipe is not None and reference is not None:
            parts = parts + _differences(dict(recipe), dict(reference))
        variants.append(Variant(run.method, parts))
    # A run without config.yaml is taken to be its options' usual recipe, not a new one.
    recipes = [references.get(c) if r is None else r for c, r in zip(contexts, recipes)]
    return _kept_apart(runs, variants, contexts, recipes)


def readable(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(readable(v) for v in value) + "]"
    return str(value)


def _recipe(run: Run) -> tuple | None:
    if run.config is None:  # an old run without config.yaml: only its options are known
        return None
    flat = flatten(run.config)
    return tuple(sorted((k, v) for k, v in flat.items() if names_a_variant(k)))


def _reference_recipes(runs: list[Run], contexts: list[tuple], recipes: list[tuple | None]) -> dict:
    counts: dict[tuple, Counter] = defaultdict(Counter)
    overridden: dict[tuple, int] = {}  # (context, recipe): fewest keys its runs set by hand
    for run, context, recipe in zip(runs, contexts, recipes):
        if recipe is not None:
            counts[context][recipe] += 1
            n = _key_overrides(run)
            overridden[(context, recipe)] = min(overridden.get((context, recipe), n), n)

    # Most runs first; on a tie the recipe whose runs set fewer keys on the command line (the
    # config's defaults), then the one with fewer nulls, since `null` switches a part off.
    def rank(context: tuple, recipe: tuple) -> tuple:
        nulls = sum(value is None for _, value in recipe)
        return (-counts[context][recipe], overridden[(context, recipe)], nulls, repr(recipe))

    return {c: min(counter, key=lambda r, c=c: rank(c, r)) for c, counter in counts.items()}


def _key_overrides(run: Run) -> int:
    """How many config keys (not group options, not seeds or fractions) the run's command set."""
    keys = [_override_key(o) for o in run.overrides if "=" in o]
    return sum("." in key and names_a_variant(key) for key in keys)


def _differences(recipe: dict, reference: dict) -> tuple[str, ...]:
    differing = {
        key
        for key in recipe.keys() | reference.keys()
        if recipe.get(key, ABSENT) != reference.get(key, ABSENT)
    }
    # `augmentation.blur=None` says it all; its removed `sigma`, `p`, ... are not news.
    outermost = [key for key in sorted(differing) if not _has_ancestor_in(key, differing)]
    return tuple(f"{key}={readable(recipe.get(key, ABSENT))}" for key in outermost)


def _has_ancestor_in(key: str, keys: set[str]) -> bool:
    names = key.split(".")
    return any(".".join(names[:i]) in keys for i in range(1, len(names)))


def _choice_parts(runs: list[Run]) -> list[tuple[str, ...]]:
    groups = sorted({g for run in runs for g in run.choices} - set(NAMED_ELSEWHERE))
    groups.sort(key=lambda g: g != "backbone")
    parts: list[list[str]] = [[] for _ in runs]
    for group in groups:
        options = Counter(run.choices.get(group, ABSENT) for run in runs)
        if len(options) < 2:
            continue
        # A backbone comparison names every backbone; other groups name only the departures
        # from their usual option.
        usual = None if group == "backbone" else _usual_option(group, runs, options)
        for run, run_parts in zip(runs, parts):
            option = run.choices.get(group, ABSENT)
            if option != usual:
                run_parts.append(f"{group}={option}")
    return [tuple(p) for p in parts]


def _usual_option(group: str, runs: list[Run], options: Counter) -> str:
    """The group's baseline option where it has one (`ablation=recipe`), else the config's
    own default, else the option most runs use (on a tie, the first by name)."""
    if BASELINE_OPTIONS.get(group) in options:
        return BASELINE_OPTIONS[group]
    defaults = Counter(
        run.choices.get(group, ABSENT) for run in runs if not _sets_group(run.overrides, group)
    )
    if not defaults:  # every command line chose this group: ask the config what it picks
        defaults = Counter(filter(None, (_config_default(group, run) for run in runs)))
    found = [option for option in defaults if option in options]
    ranked = sorted(found or options, key=lambda o: (-defaults.get(o, 0), -options[o], o))
    return ranked[0]


def _override_key(override: str) -> str:
    """`+experiment=x` -> `experiment`, `~augmentation.blur` -> `augmentation.blur`."""
    return override.split("=", 1)[0].lstrip("+~")


def _sets_group(overrides: tuple[str, ...], group: str) -> bool:
    return any(_override_key(o) == group for o in overrides if "=" in o)


def _config_default(group: str, run: Run) -> str | None:
    """The option medssl's config picks for `group` with the run's command line minus its
    choice of that group; None where that config no longer composes with those overrides."""
    kept = tuple(
        o for o in run.overrides if _override_key(o) != group and names_a_variant(_override_key(o))
    )
    return _composed_choice(group, kept)


@functools.lru_cache(maxsize=64)
def _composed_choice(group: str, overrides: tuple[str, ...]) -> str | None:
    from hydra import compose, initialize_config_dir

    from medssl.configs import config_dir

    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
        option = cfg.hydra.runtime.choices.get(group)
    except Exception:  # a config changed since the run, or Hydra already initialised
        return None
    return None if option is None else str(option)


def _kept_apart(runs, variants, contexts, recipes) -> list[Variant]:
    """Different recipes never share a name (and so a table row): a name that would still
    cover several, e.g. a key missing from an older config, gets the recipe's short hash."""
    recipes_of: dict[tuple, set] = defaultdict(set)
    for run, variant, context, recipe in zip(runs, variants, contexts, recipes):
        recipes_of[(run.dataset, variant)].add((context, recipe))
    kept = []
    for run, variant, context, recipe in zip(runs, variants, contexts, recipes):
        if len(recipes_of[(run.dataset, variant)]) > 1:
            digest = hashlib.sha1(repr((context, recipe)).encode()).hexdigest()[:6]
            variant = Variant(variant.method, (*variant.parts, f"config {digest}"))
        kept.append(variant)
    return kept


def _component_name(config: dict) -> str:
    target = config.get("_target_")
    return str(target).rsplit(".", 1)[-1] if target else "{...}"


def _frozen(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    return value
