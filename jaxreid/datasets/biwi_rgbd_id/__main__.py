"""python -m jaxreid.datasets.biwi_rgbd_id --manual_dir=... [--data_dir=...] [--config=...] [--skip_unreadable]"""

import sys

from jaxreid.datasets import common
from jaxreid.datasets.biwi_rgbd_id.builder import BiwiRgbdId

if __name__ == "__main__":
    sys.exit(common.build_main(BiwiRgbdId, default_configs=("rgb", "depth")))
