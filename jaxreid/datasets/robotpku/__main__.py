"""python -m jaxreid.datasets.robotpku --manual_dir=... [--data_dir=...] [--config=...] [--skip_unreadable]"""

import sys

from jaxreid.datasets import common
from jaxreid.datasets.robotpku.builder import Robotpku

if __name__ == "__main__":
    sys.exit(common.build_main(Robotpku, default_configs=None))
