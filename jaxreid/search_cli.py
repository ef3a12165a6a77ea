"""Command line search: rank a gallery folder for query images with a trained run.

    python -m jaxreid.search_cli --run=/tmp/jaxreid/synthetic \\
        --query=img.png --query_modality=rgb \\
        --gallery=folder/ --gallery_modality=depth --k=10 --out=ranked.png

Embeds every image under the gallery folder (recursively, file-name order) and each query,
prints each query's ranked list (rank, distance, person id, file) and, with --out, draws
them with `jaxreid.visualization.plot_rank_lists` (one row per query).

Person ids: --pattern is a regular expression with a named group `id` (and optionally
`cam`) searched in each file's path as listed (its last match; '/'-separated: the gallery folder joined with
the file's place under it, and each --query as given), so a pattern may use folder names
above --gallery: --pattern='cam(?P<cam>\\d+)/(?P<id>\\d{4})/' reads SYSU-MM01's
cam<c>/<id>/<n>.jpg (and `jaxreid.data.image_files`'s layout) whether --gallery is the
modality folder or a single camera's. --query_id overrides the query's id. When both query
and gallery ids are known, matches are framed green and other identities red; otherwise the
ranked images are drawn without frames.

Open set: with a threshold (--threshold, or the one stored in a gallery .npz by
`Gallery.set_threshold`; `jaxreid.search.open_set`), each query's answer is its nearest gallery
person when the distance is below the threshold and "not in the gallery" otherwise.

--run is a run directory of `jaxreid.train.train_and_evaluate` or a distillation directory
holding step1/ and step2/ (`jaxreid.distill`); --gallery may also be a `.npz` written by
--save_gallery (or `Gallery.save`), which skips embedding the folder again.
"""

from __future__ import annotations

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

# --index values: the exact on-device search, or a FAISS kind (jaxreid.search.index.FAISS_KINDS).
INDEXES = ("exact", "flat", "ivf", "hnsw")

_RUN = flags.DEFINE_string(
    "run",
    None,
    "Run directory (run.json + checkpoints), or a distillation directory with step1/ and step2/.",
)
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "'best', 'latest' or a step number.")
_QUERY = flags.DEFINE_multi_string("query", None, "Query image file; repeat for several.")
_QUERY_MODALITY = flags.DEFINE_string(
    "query_modality", None, "Modality of the queries, e.g. rgb, depth, infrared."
)
_QUERY_ID = flags.DEFINE_integer(
    "query_id", None, "Person id of the queries (overrides --pattern)."
)
_GALLERY = flags.DEFINE_string("gallery", None, "Gallery folder of images, or a gallery .npz.")
_GALLERY_MODALITY = flags.DEFINE_string(
    "gallery_modality", None, "Modality of the gallery images (default: --query_modality)."
)
_PATTERN = flags.DEFINE_string(
    "pattern",
    None,
    "Regular expression with a named group `id` (and optionally `cam`) searched in the file paths.",
)
_K = flags.DEFINE_integer("k", 10, "Gallery images ranked per query.")
_METRIC = flags.DEFINE_string(
    "metric",
    None,
    "Distance: euclidean, sqeuclidean, l1, linf, cosine (default: the run's config.eval.metric).",
)
_OUT = flags.DEFINE_string("out", None, "PNG file for the drawn ranked lists.")
_SAVE_GALLERY = flags.DEFINE_string(
    "save_gallery", None, "Write the embedded gallery to this .npz for later searches."
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Images per compiled embedding call.")
_INDEX = flags.DEFINE_enum(
    "index",
    "exact",
    list(INDEXES),
    "Search index: exact (on device), or FAISS flat / ivf / hnsw (jaxreid.search.index).",
)
_THRESHOLD = flags.DEFINE_float(
    "threshold",
    None,
    "Open-set distance threshold: nearer is a match, farther 'not in the gallery' "
    "(default: the gallery .npz's stored threshold, if any).",
)
flags.mark_flags_as_required(["run", "query", "query_modality", "gallery"])


def parse_ids(paths, pattern: str | None):
    """([N] person ids, [N] camera ids) read from paths with `pattern`; None if not given.

    Args:
      paths: file paths.
      pattern: a regular expression with a named group 'id' (optionally 'cam'), searched
        in each path as given, with '/' as the separator; its last match is used.

    Raises:
      ValueError: the pattern has no 'id' group, or a path does not match it (named).
    """
    if not pattern:
        return None, None
    regex = re.compile(pattern)
    if "id" not in regex.groupindex:
        raise ValueError(f"--pattern={pattern!r} has no named group 'id', e.g. (?P<id>\\d+)")
    ids, cams = [], []
    for path in paths:
        text = os.fspath(path).replace(os.sep, "/")
        # The last match: the one nearest the file name (not a year-like folder above it).
        match = next(reversed(list(regex.finditer(text))), None)
        if match is None:
            raise ValueError(f"--pattern={pattern!r} does not match the path {text!r}")
        ids.append(int(match.group("id")))
        if "cam" in regex.groupindex and match.group("cam") is not None:
            cams.append(int(match.group("cam")))
    return ids, (cams if cams else None)


def load_model(run: str, checkpoint: str):
    """A ReidModel (run directory) or DistillationModel (step1/ + step2/)."""
    from jaxreid import inference

    checkpoint = int(checkpoint) if checkpoint.lstrip("-").isdigit() else checkpoint
    if os.path.exists(os.path.join(run, inference.RUN_FILE)):
        return inference.load_run(run, checkpoint=checkpoint)
    if all(os.path.isdir(os.path.join(run, s)) for s in inference.STEP_DIRS):
        return inference.load_distillation_run(run, checkpoint=checkpoint)
    raise FileNotFoundError(
        f"--run={run!r} holds neither {inference.RUN_FILE} nor the "
        f"distillation steps {inference.STEP_DIRS}"
    )


def format_answer(distances, indices, gallery, threshold) -> str:
    """The open-set answer line of one query: its nearest person, or not in the gallery."""
    nearest = float(distances[0])
    if nearest < threshold:
        pid = gallery.ids[indices[0]]
        who = f"person {pid}" if pid >= 0 else f"{gallery.filenames[indices[0]]}"
        return f"answer: {who} (distance {nearest:.4f} < threshold {threshold:.4f})"
    return (
        f"answer: not in the gallery (nearest distance {nearest:.4f} >= threshold {threshold:.4f})"
    )


def format_ranked_list(query: str, query_id, distances, indices, gallery) -> str:
    """The text table of one query's ranked list."""
    head = f"query {query}" + (f" (id {query_id})" if query_id is not None else "")
    lines = [head, f"{'rank':>4}  {'distance':>10}  {'id':>6}  file"]
    for rank, (d, i) in enumerate(zip(distances, indices), start=1):
        pid = gallery.ids[i]
        mark = ""
        if query_id is not None and pid >= 0:
            mark = "  *" if pid == query_id else ""
        lines.append(
            f"{rank:>4}  {d:>10.4f}  {pid if pid >= 0 else '-':>6}  {gallery.filenames[i]}{mark}"
        )
    return "\n".join(lines)


def draw(query_images, ranked_images, ranked_match, path, *, k, gallery_labels, title):
    """Ranked lists as PNG: framed by match when `ranked_match` is known, else unframed."""
    from jaxreid import visualization

    if ranked_match is not None:
        return visualization.plot_rank_lists(
            query_images,
            ranked_images,
            ranked_match,
            path,
            k=k,
            gallery_labels=gallery_labels,
            title=title,
        )
    # Identities unknown: no green / red frames (plot_rank_lists always frames).
    from jaxreid.visualization import images as display

    fig = display.new_figure(k + 1, len(query_images), (1.0, 2.0), title)
    axes = fig.subplots(len(query_images), k + 1, squeeze=False)
    for row, query in enumerate(query_images):
        display.show_image(axes[row, 0], display.to_display_rgb(query), "query")
        for j in range(k):
            if j < len(ranked_images[row]):
                display.show_image(
                    axes[row, j + 1],
                    display.to_display_rgb(ranked_images[row][j]),
                    gallery_labels[row][j],
                )
            else:
                axes[row, j + 1].set_axis_off()
    return display.save_png(fig, path, 100)


def search(
    *,
    run,
    queries,
    query_modality,
    gallery,
    gallery_modality=None,
    k=10,
    pattern=None,
    query_id=None,
    metric=None,
    out=None,
    save_gallery=None,
    checkpoint="best",
    batch_size=64,
    threshold=None,
    index="exact",
    stream=None,
) -> list[dict]:
    """What the command line does, callable from Python.

    Returns:
      one dict per query: query, query_id, distances [k], indices [k], files [k], ids [k],
      and `matched` (bool: nearest below the threshold; None without a threshold).
    """
    from jaxreid import inference
    from jaxreid.evaluation.distances import canonical_metric
    from jaxreid.search import Gallery

    stream = stream or sys.stdout
    gallery_modality = gallery_modality or query_modality
    model = load_model(run, str(checkpoint))
    metric = metric or model.metric
    if os.path.isfile(gallery) and gallery.endswith(".npz"):
        found = Gallery.load(gallery)
    else:
        paths = inference.list_images(gallery)
        if not paths:
            raise FileNotFoundError(
                f"--gallery={gallery!r} holds no image files "
                f"({', '.join(inference.IMAGE_EXTENSIONS)})"
            )
        ids, cams = parse_ids(paths, pattern)
        found = model.build_gallery(
            paths, gallery_modality, ids=ids, cams=cams, metric=metric, batch_size=batch_size
        )
        print(
            f"Embedded {len(found)} {gallery_modality} gallery images from {gallery}.", file=stream
        )
    if save_gallery:
        found.save(save_gallery)
        print(f"Saved the gallery to {save_gallery}.", file=stream)
    if query_id is not None:
        query_ids = [int(query_id)] * len(queries)
    else:
        query_ids = parse_ids(queries, pattern)[0] or [None] * len(queries)
    if index not in INDEXES:
        raise ValueError(f"--index={index!r}; expected one of {INDEXES}")
    if index == "ivf":  # lists ~ sqrt(N) (FAISS's guideline), at most 1024; 16 probed
        nlist = max(1, min(1024, int(len(found) ** 0.5)))
        found.use_index("faiss", kind="ivf", nlist=nlist, nprobe=min(16, nlist))
    elif index != "exact":
        found.use_index("faiss", kind=index)
    if threshold is not None:
        found.set_threshold(float(threshold))
    if found.threshold is not None and found.threshold.metric != canonical_metric(metric):
        raise ValueError(
            f"the gallery's threshold is a {found.threshold.metric} distance, the search uses "
            f"--metric={metric}"
        )
    embeddings = model.embed_files(queries, query_modality, batch_size=batch_size)
    distances, indices = found.search(embeddings, k=k, metric=metric)
    results = []
    for q, qid, d, i in zip(queries, query_ids, distances, indices):
        print(format_ranked_list(q, qid, d, i, found), file=stream)
        matched = None
        if found.threshold is not None:
            matched = bool(d[0] < found.threshold.distance)
            print(format_answer(d, i, found, found.threshold.distance), file=stream)
        results.append(
            dict(
                query=q,
                query_id=qid,
                distances=d,
                indices=i,
                files=found.filenames[i].tolist(),
                ids=found.ids[i].tolist(),
                matched=matched,
            )
        )
    if out:
        known = all(q is not None for q in query_ids) and bool((found.ids >= 0).all())
        match = [found.ids[i] == qid for i, qid in zip(indices, query_ids)] if known else None
        out_path = draw(
            [inference.read_image(q) for q in queries],
            [[inference.read_image(found.filenames[j]) for j in i] for i in indices],
            match,
            out,
            k=k,
            gallery_labels=[[f"{v:.2f}" for v in d] for d in distances],
            title=f"{query_modality} query -> {gallery_modality} gallery ({metric})",
        )
        print(f"Wrote {out_path}.", file=stream)
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # Orbax logs every file it reads at INFO.
    try:
        search(
            run=_RUN.value,
            queries=_QUERY.value,
            query_modality=_QUERY_MODALITY.value,
            gallery=_GALLERY.value,
            gallery_modality=_GALLERY_MODALITY.value,
            k=_K.value,
            pattern=_PATTERN.value,
            query_id=_QUERY_ID.value,
            metric=_METRIC.value,
            out=_OUT.value,
            save_gallery=_SAVE_GALLERY.value,
            checkpoint=_CHECKPOINT.value,
            batch_size=_BATCH_SIZE.value,
            threshold=_THRESHOLD.value,
            index=_INDEX.value,
        )
    except (FileNotFoundError, NotADirectoryError, ValueError) as e:
        sys.exit(f"Error: {e}")


if __name__ == "__main__":
    app.run(main)
