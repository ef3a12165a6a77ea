"""Input data: TFDS sources, identity sampling, preprocessing and tf.data pipelines.

Only `sources` and `pipeline` import TensorFlow (`loading` imports `sources` when it loads
data); `image_set`, `sampler` and `preprocessing` are NumPy and can be used without it.
"""
