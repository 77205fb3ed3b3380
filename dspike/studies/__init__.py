"""Runnable studies of the paper's Sec. 4 (Fig. 2, Table 1, Fig. 3) on the toy CNN.

Each module has ``run(...)`` (returns a DataFrame, writes CSV/PNG/Markdown to an output
directory) and ``main(argv)``: ``python -m dspike.studies.fig2 --help``. They need pandas and
matplotlib (the ``pipeline`` extra); ``import dspike`` does not import them.
"""
