"""RegDB TFDS builder (imports tensorflow_datasets): `from jaxreid.datasets.regdb import builder`."""
