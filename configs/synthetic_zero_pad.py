"""The zero-padding network (Wu et al. 2017, as Hafner 2018 §3.2 / §5.2.2 implements it) on the
built-in synthetic RGB-D dataset.

  python -m jaxreid.main --config=configs/synthetic_zero_pad.py --workdir=/tmp/jaxreid/zero_pad

One ResNet18 is trained on batches mixing RGB and depth with the softmax loss, as the
one-stream network of `jaxreid.config`'s defaults (half width, 1,500 steps), but every image
enters as three channels with one channel per modality and the rest zero: RGB as grayscale
in channel 0, depth in channel 2, channel 1 always zero (the thesis's three-channel form,
kept so that three-channel pretrained weights fit; `config.data.input_layout='zero_pad'`).
Tests the four query/gallery pairs.

Arguments (comma-separated):
  two_channel  Wu et al.'s original two-channel input (`input_layout='zero_pad2'`).
  quick        reduced width, image size and steps (a smoke test).
Reaches (2-core CPU): see the README; the thesis found it below the one-stream network in
cross-modal mAP (Tables 8-10).
"""

from jaxreid.config import apply_quick, default_config


def get_config(arg: str = ""):
    config = default_config()
    config.data.modalities = ("rgb", "depth")
    config.data.input_layout = "zero_pad"
    options = [a for a in arg.split(",") if a]
    for option in options:
        if option == "two_channel":
            config.data.input_layout = "zero_pad2"
        elif option != "quick":
            raise ValueError(
                f"Unknown config argument {option!r}; expected 'two_channel' and/or 'quick'."
            )
    if "quick" in options:
        apply_quick(config)
    return config
