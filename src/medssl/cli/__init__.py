"""The command lines: `train` (train.py, medssl-train), `evaluate`, `inspect`, `report` and
`preview`, each run as `python -m medssl.cli.<name>`. Thin: they compose a config and hand it
to the packages that do the work (`run`, `evaluation`, `inspection`, `study.report`)."""
