"""Developer tools, run from the repository root; no DVC stage imports them.

* ``python -m tools.smoke``: the whole DAG at smoke scale in ``.smoke/`` (``nox -s smoke``);
* ``python -m tools.plan``: the compute plan of ``dvc repro`` before it starts;
* ``python tools/make_bundled_data.py``: rebuild ``data/bundled/`` from ``../shared/data``.
"""
