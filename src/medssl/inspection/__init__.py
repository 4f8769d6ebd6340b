"""Know a dataset before training on it: counts per split, sample tiles, intensity histograms,
image shape and range, and exact duplicates across splits (`python -m medssl.cli.inspect`)."""
