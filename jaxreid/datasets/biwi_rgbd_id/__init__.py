"""BIWI RGBD-ID TFDS builder (imports tensorflow_datasets): `from jaxreid.datasets.biwi_rgbd_id import builder`."""
