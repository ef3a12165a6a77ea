"""RobotPKU TFDS builder (imports tensorflow_datasets): `from jaxreid.datasets.robotpku import builder`."""
