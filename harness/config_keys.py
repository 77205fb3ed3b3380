"""The param mini-language: where params.yaml holds each field of a training stage's config.

:data:`FIELDS` maps a :class:`dspike.engine.TrainConfig` field (``"optim.lr"``) to its params
key: ``"@k"`` is key ``k`` of ``stages.<stage>`` over the same key of ``train``; anything else
is a dotted params key. The ``neuron`` and ``tdbn`` sections are not listed: they load as they
are into ``model.spec`` (:class:`dspike.spec.NeuronSpec`), under their own keys.
:data:`STAGE_KEYS`, the keys a stage may set, derive from it (plus ``dataset``), so the schema
(:mod:`harness.schema`) and the config builder (:mod:`harness.train_config`) read one list.

Plain data, importing nothing: the schema checks every stage's params without torch.
"""

from __future__ import annotations

__all__ = ["FIELDS", "STAGE_KEYS"]

FIELDS = {
    "model.name": "@model",
    "model.mode": "@mode",
    "model.time_steps": "@time_steps",
    "surrogate.name": "@surrogate",
    "surrogate.temperature": "dspike.b0",
    "surrogate.delta": "dspike.delta_b",
    "surrogate.fdg_epsilon": "fdg.epsilon",
    "surrogate.fdg_batch_size": "fdg.batch_size",
    "optim.lr": "@lr",
    "optim.momentum": "@momentum",
    "optim.weight_decay": "@weight_decay",
    "optim.nesterov": "@nesterov",
    "optim.schedule": "@schedule",
    "data.batch_size": "@batch_size",
    "data.workers": "data.workers",
    "run.epochs": "@epochs",
    "run.bf16": "@bf16",
    "run.select": "@select",
}

# Keys of stages.<stage>, each over the same key of train: the dataset and FIELDS' "@" keys.
STAGE_KEYS = ("dataset", *(where[1:] for where in FIELDS.values() if where.startswith("@")))
