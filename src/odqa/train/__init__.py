"""Training retrievers and readers on your own data, on one loop.

- ``loop``: the one optimisation loop (AdamW, warm-up then linear decay, clipping, bf16
  autocast by :func:`odqa.models.device.use_bf16`, seeded order, progress bar).
- Retrievers: ``data`` (training data formats), ``mining`` (hard negatives), ``losses``,
  ``retrievers`` (trainable scorers), ``checkpoints``, ``dev``, ``trainer`` (the resumable
  :class:`~odqa.train.trainer.Trainer` and its :class:`~odqa.train.trainer.TrainConfig`),
  ``run`` (:func:`~odqa.train.run.train_retriever`).
- Readers: ``fitting`` (their shared steps and length-grouped batches), ``reader``
  (:func:`~odqa.train.reader.train_reader`), ``yesno`` (:func:`~odqa.train.yesno.train_yesno`).
"""
