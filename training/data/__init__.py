"""The training data path: what a sample is made of and how it gets from the workspace to the
model. One job: turn stored volumes, labels and predictions into rendered minibatches (training)
and brain-masked exams (inference), reading no more than the batch needs.

Pipeline of one sample: stored HU (int16) -> brain extraction (``ictview.core.brain_mask``,
HU outside the brain = -1024) -> [cache] -> pick a slice -> augmentation plan (seeded) ->
scale / crop / flip of the HU (``training.augment.apply_plans``) -> windows (HU -> channels in
[0, 1]) -> contrast (``training.augment.apply_contrast``).

Modules:

- ``exam_cache``: brain-masked HU volumes by exam, read from the workspace.
- ``sources``: ``SliceSource`` pools (labeled, pseudo, oracles) with their label maps and the
  classification prior weights; the data fingerprint of a run.
- ``batches``: the deterministic mixing of sources into global minibatches (a function of
  seed and step), the DDP split, rendering on the device, and the two feeds: the planning
  thread (``train.loader_workers = 0``) or torch DataLoader processes, each with a pickled
  copy of the maker (file paths, no open handle) that reads the stored files itself.
- ``exam_loader``: exams for inference, optionally read in worker processes (no torch).

This ``__init__`` imports nothing, so that ``exam_loader`` stays torch-free in spawned workers.
"""
