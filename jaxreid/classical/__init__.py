"""Conventional re-identification baselines (Hafner 2018 §5.3, Tables 17 and 18).

  lomo    LOMO features (Liao et al. CVPR 2015 §3), jit-compiled and batched
  whos    WHOS features (Lisanti et al. TPAMI 2015 §3.1), jit-compiled and batched
  xqda    XQDA metric learning (Liao et al. CVPR 2015 §4), NumPy/SciPy
  method  `train_and_evaluate(config, workdir)`: a classical run for the experiment runner

Imports JAX, NumPy and SciPy; TensorFlow only through jaxreid.data when a run loads data.
"""
