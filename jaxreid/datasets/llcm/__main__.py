"""python -m jaxreid.datasets.llcm --manual_dir=... [--data_dir=...] [--config=...] [--skip_unreadable]"""

import sys

from jaxreid.datasets import common
from jaxreid.datasets.llcm.builder import Llcm

if __name__ == "__main__":
    sys.exit(common.build_main(Llcm, default_configs=None))
