"""LLCM TFDS builder (imports tensorflow_datasets): `from jaxreid.datasets.llcm import builder`."""
