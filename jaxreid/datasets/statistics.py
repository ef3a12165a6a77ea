"""Hafner 2018 Table 1 (dataset overview) from built datasets.

  python -m jaxreid.datasets.statistics --dataset=biwi --manual_dir=/data/BIWI
  python -m jaxreid.datasets.statistics --dataset=robotpku --manual_dir=/data/RobotPKU --fold=1
  python -m jaxreid.datasets.statistics --dataset=sysu --manual_dir=/data/SYSU-MM01

For each split (train, val, test) and overall: the number of identities and of images per
modality (M1 = RGB, M2 = depth or infrared), with the thesis's figure beside each cell. The
splits are those the paper grids train on (configs/<dataset>.py: BIWI / RobotPKU fold
`--fold` of the 3-fold design set, SYSU-MM01 its own split). The datasets are built (TFDS,
into --data_dir) on first use, as for training; images are read at 8x4 pixels since only the
labels are counted.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import numpy as np

SPLITS = ("train", "val", "test")
# Hafner 2018 Table 1: {dataset: {split: ((M1 ids, M1 images), (M2 ids, M2 images))}}.
THESIS_TABLE1 = {
    "biwi": {
        "train": ((32, 9245), (8, 9245)),  # sic: the thesis prints 8 depth training ids
        "val": ((8, 2097), (8, 2097)),
        "test": ((38, 10696), (38, 10696)),
        "overall": ((78, 22038), (78, 22038)),
    },
    "robotpku": {
        "train": ((40, 7400), (40, 7400)),
        "val": ((10, 1815), (10, 1815)),
        "test": ((40, 7297), (40, 7297)),
        "overall": ((90, 16512), (90, 16512)),
    },
    "sysu": {
        "train": ((296, 20274), (296, 9929)),
        "val": ((99, 1974), (99, 1980)),
        "test": ((96, 6775), (96, 3803)),
        "overall": ((491, 29023), (491, 15712)),
    },
}
CONFIGS = {"biwi": "biwi", "robotpku": "robotpku", "sysu": "sysu"}


def split_statistics(
    splits: Mapping[str, Mapping[str, object]], modalities: Sequence[str]
) -> dict[str, tuple[tuple[int, int], ...]]:
    """{split or 'overall': ((ids, images) per modality in `modalities` order)}.

    Args:
      splits: {'train' | 'val' | 'test': {modality: anything with `person_ids` [N] ints}}
        (jaxreid.data.sources.load_splits). 'overall' counts the union of the identities and
        the sum of the images of the splits.
    """
    out = {}
    for split in SPLITS:
        out[split] = tuple(
            (len(np.unique(splits[split][m].person_ids)), len(splits[split][m].person_ids))
            for m in modalities
        )
    out["overall"] = tuple(
        (
            len(np.unique(np.concatenate([splits[s][m].person_ids for s in SPLITS]))),
            sum(len(splits[s][m].person_ids) for s in SPLITS),
        )
        for m in modalities
    )
    return out


def table1_markdown(rows: Mapping[str, Mapping[str, tuple]], published: bool = True) -> str:
    """Thesis Table 1 layout: one line per dataset, per split M1 #ids, #imgs, M2 #ids, #imgs;
    with `published`, each cell also shows the thesis's figure ("9240 [9245]")."""
    head = ["Dataset"] + [
        f"{split} M{m} {what}"
        for split in (*SPLITS, "overall")
        for m in (1, 2)
        for what in ("#ids", "#imgs")
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for dataset, stats in rows.items():
        cells = []
        for split in (*SPLITS, "overall"):
            for m, counts in enumerate(stats[split]):
                for k, value in enumerate(counts):
                    text = str(value)
                    reference = THESIS_TABLE1.get(dataset, {}).get(split)
                    if published and reference is not None:
                        text += f" [{reference[m][k]}]"
                    cells.append(text)
        lines.append("| " + " | ".join([dataset, *cells]) + " |")
    return "\n".join(lines) + "\n"


def dataset_statistics(
    dataset: str, manual_dir: str, data_dir: str = "", fold: int = 0, num_val_ids: int = 0
):
    """Builds (if needed) and counts one dataset's splits as the paper grids use them
    (`num_val_ids` > 0 replaces the thesis's validation identities per fold: small trees)."""
    if dataset not in CONFIGS:
        raise ValueError(f"--dataset={dataset!r}; expected one of {tuple(CONFIGS)}.")
    from jaxreid.config import load_config
    from jaxreid.data import sources

    arg = f"fold={fold}" if dataset != "sysu" else ""
    config = load_config(f"configs/{CONFIGS[dataset]}.py:{arg}")
    config.data.manual_dir = manual_dir
    config.data.data_dir = data_dir
    config.data.image_size = (8, 4)  # Only the labels are counted.
    if num_val_ids > 0:
        config.data.num_val_ids = num_val_ids
    splits = sources.load_splits(config.data)
    return split_statistics(splits, tuple(config.data.modalities))


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Hafner 2018 Table 1 from built datasets.")
    parser.add_argument("--dataset", required=True, choices=tuple(CONFIGS))
    parser.add_argument("--manual_dir", required=True, help="The dataset's original folder.")
    parser.add_argument("--data_dir", default="", help="TFDS data directory.")
    parser.add_argument("--fold", type=int, default=0, help="BIWI / RobotPKU fold (0..2).")
    parser.add_argument(
        "--num_val_ids", type=int, default=0, help="Validation ids per fold (0: the thesis's)."
    )
    args = parser.parse_args(argv)
    stats = dataset_statistics(
        args.dataset, args.manual_dir, args.data_dir, args.fold, args.num_val_ids
    )
    sys.stdout.write(table1_markdown({args.dataset: stats}))


if __name__ == "__main__":
    main()
