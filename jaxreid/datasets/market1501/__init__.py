"""Market-1501 TFDS builder (imports tensorflow_datasets): `from jaxreid.datasets.market1501 import builder`."""
