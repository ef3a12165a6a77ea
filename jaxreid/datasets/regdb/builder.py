"""RegDB (Nguyen et al., Sensors 2017): visible-thermal re-id, 412 persons, 10 + 10 images each.

Manual download. Layout of the manual folder (as distributed, with the trial index files
of the common RGB-IR evaluation protocol):

  Visible/<pid>/<name>_v_<number>_<k>.bmp
  Thermal/<pid>/<name>_t_<number>_<k>.bmp
  idx/{train,test}_{visible,thermal}_{1..10}.txt   one 'path label' per line

`path` is relative to the manual folder (e.g. 'Visible/1/female_back_v_00010_1.bmp');
`label` is the 0-based identity index within that file. `person_id` is the folder number
<pid> (the dataset's own identity), checked to correspond one-to-one with `label`.

Configs: 'rgb' (visible camera, camera_id 1) and 'thermal' (thermal camera, camera_id 2,
1-channel uint8). Splits: 'train_<t>' and 'test_<t>' for the 10 trials t = 1..10, each in
the order of its index file. `frame_id` pairs a visible and a thermal image taken by the
dual-camera system at the same instant (their file names differ only in _v_ / _t_);
it is '' when the counterpart file is absent.
"""

from __future__ import annotations

import pathlib
import re

from jaxreid.datasets import common

NUM_TRIALS = 10
SPLITS = tuple(f"{s}_{t}" for t in range(1, NUM_TRIALS + 1) for s in ("train", "test"))
CAMERA_ID = {"rgb": 1, "thermal": 2}
_FOLDER = {"rgb": "Visible", "thermal": "Thermal"}
_INDEX_NAME = {"rgb": "visible", "thermal": "thermal"}
_INDEX_FIX = (
    " Fix: restore idx/ from the RGB-IR evaluation code (one 'relative/path.bmp label' per line)."
)
_PAIR = re.compile(r"^(?P<a>.+)_(?:v|t)_(?P<b>.+)$")

_LAYOUT = (
    "folders Visible/<pid>/ and Thermal/<pid>/ with the images (e.g. "
    "Visible/1/female_back_v_00010_1.bmp) and the trial files idx/train_visible_<t>.txt, "
    "idx/train_thermal_<t>.txt, idx/test_visible_<t>.txt, idx/test_thermal_<t>.txt for "
    "t = 1..10, one 'relative/path.bmp label' per line."
)

_CITATION = """\
@article{nguyen2017person,
  title   = {Person Recognition System Based on a Combination of Body Images from Visible Light and Thermal Cameras},
  author  = {Nguyen, Dat Tien and Hong, Hyung Gil and Kim, Ki Wan and Park, Kang Ryoung},
  journal = {Sensors},
  volume  = {17},
  number  = {3},
  pages   = {605},
  year    = {2017}
}
"""


class Regdb(common.ReidBuilder):
    """RegDB visible / thermal person re-identification, 10 trials."""

    name = "regdb"
    BUILDER_CONFIGS = [
        common.ReidConfig(
            name="rgb", modality="rgb", description="Visible-light camera (camera_id 1)."
        ),
        common.ReidConfig(
            name="thermal",
            modality="thermal",
            description="Thermal camera (camera_id 2), 1-channel uint8.",
        ),
    ]
    DESCRIPTION = __doc__
    CITATION = _CITATION
    HOMEPAGE = "http://dm.dongguk.edu/link.html"
    LAYOUT_HELP = _LAYOUT
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
RegDB ("Dongguk Body-based Person Recognition Database") is distributed by Dongguk
University on request ({HOMEPAGE}). The trial files idx/*.txt are those used by the
RGB-IR re-id evaluation code of Ye et al. (e.g. github.com/mangye16/Cross-Modal-Re-ID-baseline).
Manual folder: {_LAYOUT}
Build (configs rgb and thermal): python -m jaxreid.datasets.regdb \\
  --manual_dir=/path/to/RegDB --data_dir=~/tensorflow_datasets
"""

    def _split_generators(self, dl_manager):
        root = self.manual_folder(dl_manager)
        modality = self.builder_config.modality
        folder = root / _FOLDER[modality]
        other = root / _FOLDER["thermal" if modality == "rgb" else "rgb"]
        if not folder.is_dir():
            raise self.layout_error(root, f"Missing folder {folder}.")
        trials = {}
        for t in range(1, NUM_TRIALS + 1):
            entries = {}
            for split in ("train", "test"):
                own = read_index(root, split, _INDEX_NAME[modality], t, self.layout_error)
                counterpart = read_index(
                    root,
                    split,
                    _INDEX_NAME["thermal" if modality == "rgb" else "rgb"],
                    t,
                    self.layout_error,
                )
                a, b = {e[1] for e in own}, {e[1] for e in counterpart}
                if a != b:
                    raise common.ManualDataError(
                        f"Trial {t} {split}: {index_path(root, split, 'visible', t)} and "
                        f"{index_path(root, split, 'thermal', t)} list different persons "
                        f"(only in one: {sorted(a ^ b)[:10]}). Expected the same identities in both modalities.{_INDEX_FIX}"
                    )
                entries[split] = own
            both = {e[1] for e in entries["train"]} & {e[1] for e in entries["test"]}
            if both:
                raise common.ManualDataError(
                    f"Trial {t}: persons {sorted(both)[:10]} are in both {index_path(root, 'train', 'visible', t)} "
                    f"and {index_path(root, 'test', 'visible', t)}; expected disjoint train and test identities.{_INDEX_FIX}"
                )
            trials[t] = entries
        self._cache = {}  # every image is in 10 trials: decode and encode it once
        gens = {}
        for t, entries in trials.items():
            for split in ("train", "test"):
                name = f"{split}_{t}"
                gens[name] = self._generate_examples(root, other, entries[split], name)
        return gens

    def _generate_examples(self, root: pathlib.Path, other: pathlib.Path, entries, split):
        modality = self.builder_config.modality
        positions: dict[pathlib.Path, dict[str, int]] = {}  # per person folder
        key = 0
        for rel, pid, _label in entries:
            path = root / rel
            if path.parent not in positions:
                positions[path.parent] = common.file_positions(
                    p.name for p in common.list_images(path.parent)
                )
            if rel not in self._cache:
                self._cache[rel] = self.read_image(path, root)
            image = self._cache[rel]
            if image is None:
                continue
            yield (
                key,
                common.example(
                    image,
                    modality,
                    pid,
                    CAMERA_ID[modality],
                    pair_key(pid, path, other),
                    positions[path.parent][path.name],
                    rel,
                ),
            )
            key += 1
        self.report_skipped(split, key)


def pair_key(pid: int, path: pathlib.Path, other_folder: pathlib.Path) -> str:
    """'<pid>/<name without _v_/_t_>' if the other modality has the counterpart file, else ''."""
    m = _PAIR.match(path.stem)
    if not m:
        return ""
    for letter in ("v", "t"):
        if (other_folder / path.parent.name / f"{m['a']}_{letter}_{m['b']}{path.suffix}").exists():
            return f"{pid}/{m['a']}_{m['b']}"
    return ""


def index_path(root: pathlib.Path, split: str, modality_name: str, trial: int) -> pathlib.Path:
    return root / "idx" / f"{split}_{modality_name}_{trial}.txt"


def read_index(root: pathlib.Path, split: str, modality_name: str, trial: int, layout_error=None):
    """[(relative path, person id, label)] of idx/<split>_<modality>_<trial>.txt, in file order.

    The person id is the number of the folder the image is in; labels and person ids must
    correspond one-to-one, every listed file must exist and lie in the modality's folder.
    """
    path = index_path(root, split, modality_name, trial)
    if not path.is_file():
        problem = f"Missing trial file {path}."
        if layout_error is not None:
            raise layout_error(root, problem)
        raise common.ManualDataError(problem + f" Expected: {_LAYOUT} Fix: add the missing file.")
    folder = "Visible" if modality_name == "visible" else "Thermal"

    def person_of(rel):
        bits = rel.split("/")
        if len(bits) != 3 or bits[0] != folder or not bits[1].isdigit():
            return None, f"a path {folder}/<pid>/<file>, e.g. {folder}/1/<file>.bmp"
        return int(bits[1]), None

    entries = common.parse_path_label_index(
        path,
        root,
        kind="trial",
        example_line="relative/path.bmp label",
        label_pattern=r"-?\d+",
        person_of=person_of,
        fix=_INDEX_FIX,
        missing_image_fix="Fix: extract Visible/ and Thermal/ completely into the manual folder.",
    )
    return [(rel, pid, label) for rel, pid, label, _ in entries]


__all__ = ["Regdb", "read_index", "SPLITS", "CAMERA_ID"]
