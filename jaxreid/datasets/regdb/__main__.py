"""python -m jaxreid.datasets.regdb --manual_dir=... [--data_dir=...] [--config=...] [--skip_unreadable]"""

import sys

from jaxreid.datasets import common
from jaxreid.datasets.regdb.builder import Regdb

if __name__ == "__main__":
    sys.exit(common.build_main(Regdb, default_configs=None))
