"""Compute plan: what ``dvc repro`` will run, what it will cost, and how to split it over devices.

    python -m tools.plan                        # the plan of the stages still to run
    python -m tools.plan measure --device cpu   # measure this device's rates, store them

* :mod:`.workload`: what one stage computes (dataset sizes, epochs, steps, T, model) as terms
  (count x unit), from its ``cmd`` in dvc.yaml and params.yaml.
* :mod:`.dag`: the DVC stages, their upstream stages, which still have to run, and the chains
  that can run at once on separate devices.
* :mod:`.rates`: a device's seconds per unit (measured or given, one JSON file per device, on a
  wall or CPU clock) and a stage's seconds estimated from them.
* :mod:`.measure`: measuring those rates with the project's own code, and DVC's own cost.
* :mod:`.report`: the plan and its printout; ``__main__``: the command line.

Not a DVC stage: nothing in dvc.yaml runs it.
"""
