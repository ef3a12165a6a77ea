"""python -m jaxreid.datasets.market1501 --manual_dir=... [--data_dir=...] [--config=...] [--skip_unreadable]"""

import sys

from jaxreid.datasets import common
from jaxreid.datasets.market1501.builder import Market1501

if __name__ == "__main__":
    sys.exit(common.build_main(Market1501, default_configs=None))
