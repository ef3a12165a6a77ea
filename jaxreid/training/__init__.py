"""Training: one engine and one loop, configured by each method.

  state          TrainState (the checkpoint format) and the data-parallel Mesh
  optimizers     optimisers and learning-rate schedules (config.optim)
  steps          loss composition and the compiled step functions (no TensorFlow)
  freezing       which layers are frozen, by the model's own layer order
  engine         a network with its compiled step and embedding on the mesh
  checkpoints    latest / best checkpoints, resume, restore; load_trained_run (the one
                 loader of a trained run: run.json, its network, a checkpoint)
  loop           the one loop: step, log, validate, checkpoint, stop on NaN or signal
  progress       the progress line and the stop request (SIGTERM / SIGINT)
  preflight      checks before any work: config, devices, work directory
  summaries      TensorBoard writer
  supervised     the method 'supervised' (one network): train_and_evaluate
  distillation   the method 'distillation' (two steps): train_and_evaluate
  distillation_targets   Step II targets and batches

The methods are selected by config.method through jaxreid.methods. This package's __init__
imports nothing, so `import jaxreid.training.steps` stays light.
"""
