"""Training: one engine and one loop, configured by each method.

  state          TrainState (the checkpoint format) and the data-parallel Mesh
  optimizers     optimisers and learning-rate schedules (config.optim)
  steps          loss composition and the compiled step functions (no TensorFlow)
  freezing       which layers are frozen, by the model's own layer order
  engine         a network with its compiled step and embedding on the mesh
  checkpoints    latest / best checkpoints, resume, restore
  loop           the one loop: step, log, validate, checkpoint, stop on NaN or signal
  progress       the progress line and the stop request (SIGTERM / SIGINT)
  preflight      checks before any work: config, devices, work directory
  summaries      TensorBoard writer
  supervised     the supervised trainer (one network): train_and_evaluate
  distillation   the two-step cross-modal distillation trainer: train_and_evaluate
  distillation_targets   Step II targets and batches

This package's __init__ imports nothing, so `import jaxreid.training.steps` stays light.
"""
