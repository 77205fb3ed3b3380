"""Compute plan: what ``dvc repro`` will run, what it will cost, and how to split it over devices.

    python -m tools.plan                        # the plan of the stages still to run
    python -m tools.plan measure --device cpu   # measure this device's rates, store them

* :mod:`.workload`: what one stage computes (dataset sizes, epochs, steps, T, model) as terms
  (count x unit), from its ``cmd`` in dvc.yaml and params.yaml.
* :mod:`.dag`: the DVC stages, their upstream stages, and which still have to run.
* :mod:`.throughput`: a device's seconds per unit, measured or given, one JSON file per device.
* :mod:`.measure`, :mod:`.dvc_cost`: measuring them with the project's own code, and DVC's.
* :mod:`.estimate`: a stage's seconds; :mod:`.chains`: the chains that can run at once;
  :mod:`.report`: the plan and its printout.

Not a DVC stage: nothing in dvc.yaml runs it.
"""
