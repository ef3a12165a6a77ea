"""Test-wide settings: 8 host CPU devices and fast compilation.

XLA_FLAGS must be set before JAX is imported anywhere, so it is set here, at the top of
the first module pytest loads.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

# Tests use tiny models; the time goes into compilation, not execution.
jax.config.update("jax_disable_most_optimizations", True)
