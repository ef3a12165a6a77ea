"""Built-in synthetic RGB / depth / infrared re-id dataset.

NumPy-only API (imported here): `SyntheticConfig`, `Camera`, `generate`, `iter_examples`,
and the renderer in `render` (entry points; it re-exports the names of `people`, `scenes`,
`pose`, `geometry` and `shading`, where the renderer's parts live). The TFDS builder
(`synthetic_reid`) lives in `.builder`, which imports TensorFlow; import it explicitly.
"""

from jaxreid.datasets.synthetic import render
from jaxreid.datasets.synthetic.generation import (
    SPLITS,
    Camera,
    SyntheticConfig,
    generate,
    iter_examples,
)

__all__ = ["SPLITS", "Camera", "SyntheticConfig", "generate", "iter_examples", "render"]
