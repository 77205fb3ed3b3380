"""The paper's experiments outside the library: its Sec. 4 studies on the toy CNN (Fig. 2,
Table 1, Fig. 3), the tables' formatting and the numbers the paper reports.

* :mod:`paper.fig2`, :mod:`paper.table1`, :mod:`paper.fig3` (on :mod:`paper.toy_training`):
  each has ``run(...)``, which returns a DataFrame and writes CSV/PNG/Markdown to a folder;
  their entry point is the stage of the same name (``python -m pipelines.fig2``), which takes
  every setting from params.yaml;
* :mod:`paper.markdown`, :mod:`paper.energy_report`: tables as CSV + Markdown, Table 3 and Fig. 4;
* ``paper/reported.yaml``: the paper's reported numbers, shown beside ours
  by the report (``pipelines.tables``), never in place of a run.

They need pandas and matplotlib (the ``pipeline`` extra); ``import dspike`` does not import them.
"""
