"""The best checkpoint is chosen on validation identities only, never on test identities.

Three checks: no shipped config names its test (or query) split as the validation split; a
held-out validation fold (val_split '') is carved from the training identities; and in a
trained run every validation call sees exactly the validation identities, the test call the
test identities, and the kept checkpoint is the one with the best validation score.
"""

import os

import numpy as np
import pytest

from jaxreid.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = [
    "agw.py",
    "agw.py:regdb",
    "agw.py:synthetic",
    "agw_ca.py",
    "biwi.py",
    "llcm.py",
    "market1501.py",
    "regdb.py",
    "robotpku.py",
    "synthetic.py",
    "synthetic_distill.py",
    "synthetic_zero_pad.py",
    "sysu.py",
    "tekeli.py",
    "tekeli.py:dataset=regdb",
    "classical.py",
    "classical.py:dataset=sysu",
]


def test_every_shipped_config_is_listed():
    shipped = {f for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".py")}
    assert shipped == {c.split(":")[0] for c in CONFIGS}


@pytest.mark.parametrize("name", CONFIGS)
def test_no_config_validates_on_test_identities(name):
    data = load_config(os.path.join(ROOT, "configs", name)).data
    if data.val_split:  # The dataset's own validation split: never the test or query split.
        assert data.val_split not in (data.test_split, data.query_split)
    else:  # A fold of the training identities (sources.load_splits).
        assert data.train_split not in (data.test_split, data.query_split)


def test_held_out_fold_comes_from_the_training_identities(synthetic_data_dir):
    from jaxreid.data import sources

    config = load_config(os.path.join(ROOT, "configs", "synthetic.py:quick"))
    config.data.data_dir = synthetic_data_dir
    config.data.val_split = ""
    splits = sources.load_splits(config.data)
    train_ids = set(sources.load_image_set(config.data, "rgb", "train").person_ids)
    for modality in config.data.modalities:
        val = set(splits["val"][modality].person_ids)
        assert val and val <= train_ids
        assert not val & set(splits["train"][modality].person_ids)
        assert not val & set(splits["test"][modality].person_ids)


def test_validation_calls_see_only_validation_identities(tmp_path, monkeypatch, synthetic_data_dir):
    from jaxreid import train
    from jaxreid.data import sources
    from jaxreid.evaluation import experiment

    config = load_config(os.path.join(ROOT, "configs", "synthetic.py:quick"))
    config.data.data_dir = synthetic_data_dir
    calls, scores = [], []
    evaluate_pairs, validation_score = experiment.evaluate_pairs, experiment.validation_score

    def spy_pairs(embed, image_sets, *args, **kwargs):
        calls.append({m: set(s.person_ids) for m, s in image_sets.items()})
        return evaluate_pairs(embed, image_sets, *args, **kwargs)

    def spy_score(*args, **kwargs):
        scores.append(validation_score(*args, **kwargs))
        return scores[-1]

    monkeypatch.setattr(experiment, "evaluate_pairs", spy_pairs)
    monkeypatch.setattr(experiment, "validation_score", spy_score)
    results = train.train_and_evaluate(config, str(tmp_path))

    splits = sources.load_splits(config.data)
    ids = lambda split: {m: set(s.person_ids) for m, s in splits[split].items()}
    evaluations = config.num_train_steps // config.eval_every_steps
    assert len(calls) == evaluations + 1 and len(scores) == evaluations
    for seen in calls[:-1]:
        assert seen == ids("val")
        assert all(not seen[m] & ids("test")[m] for m in seen)
    assert calls[-1] == ids("test")
    best = (int(np.argmax(scores)) + 1) * config.eval_every_steps  # first maximum wins
    assert results["best_step"] == best
