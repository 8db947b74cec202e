"""returnhook's benchmark: our worker against the machine's own ceilings, in one run.

`python -m bench --quick` (under 3 minutes) or `python -m bench` (full: median of 3 runs). See
`bench/README.md` for what each figure means.
"""
