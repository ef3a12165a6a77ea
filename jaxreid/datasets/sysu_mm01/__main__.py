"""python -m jaxreid.datasets.sysu_mm01 --manual_dir=... [--data_dir=...] [--config=...] [--skip_unreadable]"""

import sys

from jaxreid.datasets import common
from jaxreid.datasets.sysu_mm01.builder import SysuMm01

if __name__ == "__main__":
    sys.exit(common.build_main(SysuMm01, default_configs=None))
