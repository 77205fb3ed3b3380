"""What the DVC stages of :mod:`pipelines` share, and nothing else does.

* :mod:`harness.params`: params.yaml, loaded once into typed records and checked;
* :mod:`harness.cli`: a stage's command line and its one-line errors;
* :mod:`harness.tracking`: MLflow by its own conventions;
* :mod:`harness.train_config`, :mod:`harness.train_data`, :mod:`harness.train_outputs`,
  :mod:`harness.train_tracking`: a training run's config, data, outputs and MLflow run (the
  ``train`` and ``energy`` stages);
* :mod:`harness.study`: what the toy-CNN study stages (``fig2``, ``table1``) share.

The library (:mod:`dspike`) never imports it.
"""
