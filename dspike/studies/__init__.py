"""The paper's Sec. 4 studies (Fig. 2, Table 1, Fig. 3) on the toy CNN, as library functions.

Each module has ``run(...)``: it returns a DataFrame and writes CSV/PNG/Markdown to an output
directory. Their one entry point is the pipeline stage of the same name
(``python -m pipelines.fig2``, ``table1``, ``fig3``), which takes every setting from params.yaml.
They need pandas and matplotlib (the ``pipeline`` extra); ``import dspike`` does not import them.
"""
