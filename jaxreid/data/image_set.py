"""An in-memory set of images of one modality with their re-id labels."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """Images of one modality and one split, resized to the network's input size.

    Attributes:
      modality: 'rgb' | 'depth' | 'infrared' | 'thermal'.
      images: [N, H, W, C] uint8 or uint16, as stored by the dataset (depth may be 16-bit).
      person_ids: [N] int32, the dataset's own identity numbers.
      camera_ids: [N] int32.
      frame_ids: [N] str, links an RGB frame to its simultaneous depth frame ('' if none).
      file_index: [N] int32, 1-based position of the file among its (camera, person) files.
      filenames: [N] str, path of the source file relative to the dataset folder.
    """

    modality: str
    images: np.ndarray
    person_ids: np.ndarray
    camera_ids: np.ndarray
    frame_ids: np.ndarray
    file_index: np.ndarray
    filenames: np.ndarray

    def __post_init__(self):
        n = len(self.images)
        for field in ("person_ids", "camera_ids", "frame_ids", "file_index", "filenames"):
            if len(getattr(self, field)) != n:
                raise ValueError(
                    f"ImageSet({self.modality}).{field} has {len(getattr(self, field))} entries, "
                    f"images has {n}."
                )

    def __len__(self) -> int:
        return len(self.images)

    def select(self, indices: np.ndarray) -> "ImageSet":
        """The subset at `indices` ([M] int or [N] bool), in that order."""
        return ImageSet(
            modality=self.modality,
            images=self.images[indices],
            person_ids=self.person_ids[indices],
            camera_ids=self.camera_ids[indices],
            frame_ids=self.frame_ids[indices],
            file_index=self.file_index[indices],
            filenames=self.filenames[indices],
        )

    def with_ids(self, ids) -> "ImageSet":
        """The images whose person id is in `ids`."""
        return self.select(np.isin(self.person_ids, np.asarray(list(ids))))
