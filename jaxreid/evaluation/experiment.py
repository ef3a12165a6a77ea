"""Evaluation as an experiment config asks for it: which modality pairs, which protocol, the
validation score that picks the best checkpoint, and the results table.

The trainers reach evaluation through one interface, an `Embed` callable
`embed(modality, image_set) -> [N, D] float32` features in the order of `image_set`: the
supervised trainer embeds every modality with its one network, the distillation trainer each
modality with its own (Hafner 2018 §3.3.3: F for the source, G for the target modality), the
conventional baseline returns its extracted (and XQDA-projected) features. `test` is the one
test-protocol dispatch of every method (config.method).

Imports NumPy and jaxreid.evaluation only (the image sets are read, never created, here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from jaxreid.config import choices
from jaxreid.evaluation import rerank as rerank_lib
from jaxreid.evaluation.distances import is_collapsed
from jaxreid.evaluation.hafner import PAIR_PROTOCOLS  # noqa: F401 (re-exported)
from jaxreid.evaluation.hafner import evaluate_modality_pairs, pair_name
from jaxreid.evaluation.llcm import LLCM_DIRECTIONS, llcm
from jaxreid.evaluation.market import market1501
from jaxreid.evaluation.regdb import regdb_trial
from jaxreid.evaluation.sysu import sysu_mm01_settings
from jaxreid.evaluation.tables import format_table, modality_pairs_table, sysu_table

Embed = Callable[[str, Any], np.ndarray]
TEST_PROTOCOLS = choices.TEST_PROTOCOLS
# The modalities each test protocol needs: (query, gallery); Market-1501's queries come from
# its query split (config.data.query_split), its gallery from the test split.
PROTOCOL_MODALITIES = choices.PROTOCOL_MODALITIES


def evaluate_pairs(
    embed: Embed,
    sets: Mapping[str, Any],
    eval_config: ml_collections.ConfigDict,
    protocol: str | None = None,
    rerank: rerank_lib.RerankParams | None = None,
    camera_rule: bool = False,
) -> dict[str, dict]:
    """Metrics for every query/gallery modality pair of `sets` (Hafner 2018, Table 5 layout).

    Args:
      embed: features of one modality's image set.
      sets: {modality: ImageSet}.
      eval_config: config.eval.
      protocol: one of PAIR_PROTOCOLS ('hafner_text', 'hafner_code', 'full';
        evaluate_modality_pairs); default eval_config.protocol.
      rerank: k-reciprocal re-ranking (Zhong et al. 2017), or None.
      camera_rule: 'hafner_code' only: the camera rule of a test set (`test` passes
        eval_config.camera_rule; validation keeps the default, relaxed, as thesis §4.3.1 does
        for every validation set).
    """
    protocol = protocol or eval_config.protocol
    features = {
        modality: dict(
            feats=embed(modality, image_set),
            ids=image_set.person_ids,
            cams=image_set.camera_ids,
            frames=image_set.frame_ids,
        )
        for modality, image_set in sets.items()
    }
    return evaluate_modality_pairs(
        features,
        protocol=protocol,
        seed=eval_config.seed,
        repeats=eval_config.repeats,
        max_queries_per_id=eval_config.max_queries_per_id,
        metric=eval_config.metric,
        rerank=rerank,
        camera_rule=bool(camera_rule) and protocol == "hafner_code",
        use_all_quirk=protocol == "hafner_code" and bool(eval_config.hafner_code_use_all_quirk),
        # 'trapezoid': scikit-learn 0.15's AP, the release the author's environment.yml pins.
        ap_definition=eval_config.ap if protocol == "hafner_code" else "non_interpolated",
    )


def test(
    embed: Embed,
    sets: Mapping[str, Any],
    eval_config: ml_collections.ConfigDict,
    query_sets: Mapping[str, Any] | None = None,
) -> dict:
    """The final test under `eval_config.test_protocol` (TEST_PROTOCOLS), re-ranked when
    `eval_config.rerank` is on (never validation: the best checkpoint is chosen without it).

    Args:
      sets: {modality: ImageSet} of the test split.
      query_sets: {modality: ImageSet} of the query split (Market-1501), if any.
    """
    protocol = eval_config.test_protocol
    rerank = rerank_lib.RerankParams.from_config(eval_config)
    if protocol == "pairs":
        results = evaluate_pairs(
            embed, sets, eval_config, rerank=rerank, camera_rule=eval_config.camera_rule
        )
        warn_if_collapsed(results, "Test")
        return results
    if protocol not in PROTOCOL_MODALITIES:
        raise ValueError(
            f"config.eval.test_protocol={protocol!r}; expected one of {TEST_PROTOCOLS}."
        )
    needed = PROTOCOL_MODALITIES[protocol]
    missing = [m for m in needed if m not in sets]
    if missing:
        raise ValueError(
            f"config.eval.test_protocol={protocol!r} needs modalities {needed}; "
            f"config.data.modalities has {tuple(sets)}."
        )
    if protocol == "market":
        if not query_sets or "rgb" not in query_sets:
            raise ValueError(
                "config.eval.test_protocol='market' needs the query split: set "
                "config.data.query_split (Market-1501: 'query')."
            )
        q, g = query_sets["rgb"], sets["rgb"]
        qf, gf = embed("rgb", q), embed("rgb", g)
        warn_if_collapsed({"rgb": {"collapsed": is_collapsed(qf) or is_collapsed(gf)}}, "Test")
        return market1501(
            qf,
            q.person_ids,
            q.camera_ids,
            gf,
            g.person_ids,
            g.camera_ids,
            metric=eval_config.metric,
            rerank=rerank,
            ap=eval_config.ap,
        )
    query, gallery = needed
    feats = {m: embed(m, sets[m]) for m in (query, gallery)}
    warn_if_collapsed({m: {"collapsed": is_collapsed(f)} for m, f in feats.items()}, "Test")
    q, g = sets[query], sets[gallery]
    if protocol == "sysu":
        return sysu_mm01_settings(
            feats[query],
            q.person_ids,
            q.camera_ids,
            feats[gallery],
            g.person_ids,
            g.camera_ids,
            g.file_index,
            settings=tuple(eval_config.sysu_settings),
            sampler=eval_config.sysu_sampler,
            perm_file=eval_config.sysu_perm_file or None,
            metric=eval_config.metric,
            rerank=rerank,
        )
    if protocol == "llcm":
        return llcm(
            feats[query],
            q.person_ids,
            q.camera_ids,
            q.file_index,
            feats[gallery],
            g.person_ids,
            g.camera_ids,
            g.file_index,
            trials=eval_config.llcm_trials,
            vis_to_ir=eval_config.llcm_vis_to_ir,
            metric=eval_config.metric,
            rerank=rerank,
        )
    return regdb_trial(
        feats[query],
        q.person_ids,
        feats[gallery],
        g.person_ids,
        metric=eval_config.metric,
        rerank=rerank,
    )


def default_val_pairs(modalities) -> list[str]:
    """The cross-modal pairs for two modalities, else the single modality's pair."""
    if len(modalities) == 1:
        return [pair_name(modalities[0], modalities[0])]
    a, b = modalities
    return [pair_name(a, b), pair_name(b, a)]


def validation_score(config: ml_collections.ConfigDict, results: Mapping[str, dict]) -> float:
    """Mean mAP over the validation pairs (the early-stopping criterion, Hafner 2018 §4.3.2).

    A collapsed embedding (every image in one point) scores 0: its chance-level mAP is an
    artefact of tie-breaking, and such a checkpoint must never be kept as the best one. NaN
    (no validation query has a true match) is returned as NaN; the loop never keeps a
    checkpoint by it.
    """
    pairs = list(config.eval.val_pairs) or default_val_pairs(config.data.modalities)
    missing = [p for p in pairs if p not in results]
    if missing:
        raise ValueError(
            f"config.eval.val_pairs names {missing}; evaluated pairs are {sorted(results)}."
        )
    if any(results[p].get("collapsed") for p in pairs):
        return 0.0
    return float(np.mean([results[p]["mAP"] for p in pairs]))


def warn_if_collapsed(results: Mapping[str, Any], what: str) -> None:
    """Warns about the modality pairs (or modalities) of `results` flagged 'collapsed'."""
    pairs = [p for p, r in results.items() if isinstance(r, dict) and r.get("collapsed")]
    if pairs:
        logging.warning(
            "%s: the network embeds every query or gallery image of %s in one point (e.g. a "
            "triplet loss stuck at its margin, Hafner 2018 §4.3.2); these metrics mean nothing "
            "and print as n/a.",
            what,
            ", ".join(pairs),
        )


def results_table(config: ml_collections.ConfigDict, test_results: Mapping) -> str:
    """The test results in the layout of the paper the protocol comes from."""
    protocol = config.eval.test_protocol
    if protocol == "sysu":
        return sysu_table(
            {config.model.backbone: test_results}, settings=tuple(config.eval.sysu_settings)
        )
    if protocol == "regdb":
        return format_table(test_results, row_header="RegDB direction")
    if protocol == "llcm":
        return format_table(
            {d: test_results[d] for d in LLCM_DIRECTIONS}, row_header="LLCM direction"
        )
    if protocol == "market":
        return format_table({"Market-1501": test_results}, row_header="Protocol")
    return modality_pairs_table(test_results)


def results_markdown(
    config: ml_collections.ConfigDict, test_results: Mapping, title: str
) -> str:
    """The Markdown of a results.md: '### <title>; <protocol_tag>' over the `results_table`."""
    return f"### {title}; {protocol_tag(config)}\n\n" + results_table(config, test_results)


def protocol_tag(config: ml_collections.ConfigDict) -> str:
    """What a results table was computed with: protocol, gallery sampling, trials, AP,
    the ranked feature, the metric and re-ranking; e.g. for a title."""
    ev = config.eval
    parts = [f"protocol {ev.test_protocol}"]
    if ev.test_protocol == "pairs":
        if ev.protocol == "hafner_text":
            parts.append(f"{ev.protocol} ({ev.repeats} repeats of a single-shot gallery)")
        elif ev.protocol == "hafner_code":
            parts.append(
                f"{ev.protocol} ({ev.max_queries_per_id} draws per person with replacement, "
                "mAP on them, CMC from 15 single-shot subsamples, "
                + ("camera rule" if ev.camera_rule else "identical image removed")
                + (", the code's use_all masking" if ev.hafner_code_use_all_quirk else "")
                + ")"
            )
        else:
            parts.append("full gallery")
    elif ev.test_protocol == "sysu":
        parts.append(f"{ev.sysu_sampler} gallery sampler, 10 trials")
    elif ev.test_protocol == "llcm":
        parts.append(f"{ev.llcm_trials} trials")
    ap = ev.ap if ev.test_protocol == "market" else "non_interpolated"
    parts.append(f"{ap.replace('_', '-')} AP")
    if config.method == "classical":  # jaxreid.classical ranks its own features, its own way.
        matching = "XQDA" if config.classical.matching == "xqda" else "Euclidean"
        parts.append(f"{config.classical.features.upper()} features, {matching} matching")
    else:
        parts += [
            "flip test" if ev.flip_test else "no flip test",
            f"feature {ev.feature or 'embedding'}",
            f"metric {ev.metric}",
        ]
    rerank = rerank_lib.describe(rerank_lib.RerankParams.from_config(ev))
    parts.append(rerank or "no re-ranking")
    return ", ".join(parts)


def checkpoint_rule(config: ml_collections.ConfigDict) -> str:
    """Which checkpoint a run's test figures come from; never one chosen on test identities
    (tests/test_validation_identities.py)."""
    if config.method == "classical":
        return "no checkpoint (hand-crafted features)"
    if config.method == "distillation":
        measure = config.distill.early_stopping.removeprefix("val_").replace("_", " ")
        return f"Step II checkpoint with the best validation {measure} (validation identities)"
    return "checkpoint with the best validation mAP (validation identities)"


def pair_scalars(prefix: str, results: Mapping[str, dict]) -> dict[str, float]:
    """{'<prefix>/<pair>/<metric>': value} for the numeric summaries of every pair."""
    return {
        f"{prefix}/{pair}/{k}": float(v)
        for pair, r in results.items()
        if isinstance(r, Mapping)
        for k, v in r.items()
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
    }
