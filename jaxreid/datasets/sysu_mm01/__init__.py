"""SYSU-MM01 TFDS builder (imports tensorflow_datasets): `from jaxreid.datasets.sysu_mm01 import builder`."""
