"""TensorBoard summaries are written as scalars, readable by TensorBoard's own event reader."""

import math

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from jaxreid.config import default_config
from jaxreid.training import summaries


def read(directory):
    events = event_accumulator.EventAccumulator(str(directory), size_guidance={"scalars": 0})
    events.Reload()
    return events


def test_scalars_are_read_back_as_scalars(tmp_path):
    writer = summaries.open_writer(str(tmp_path), default_config())
    writer.write_scalars(5, {"train/loss": 2.5, "val/mAP": np.float32(0.25)})
    writer.write_scalars(10, {"train/loss": 1.25, "val/mAP": float("nan")})
    writer.flush()
    events = read(tmp_path)
    assert sorted(events.Tags()["scalars"]) == ["train/loss", "val/mAP"]
    # Not also as TF2 tensor summaries (only the hparams plugin's own summary is a tensor).
    assert events.Tags()["tensors"] == ["_hparams_/session_start_info"]
    # Values exactly representable in float32 (simple_value is a float32): compared exactly.
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(5, 2.5), (10, 1.25)]
    mean_ap = events.Scalars("val/mAP")
    assert [e.step for e in mean_ap] == [5, 10]
    assert mean_ap[0].value == 0.25 and math.isnan(mean_ap[1].value)


def test_the_config_is_written_as_hyper_parameters(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    config = default_config()
    summaries.open_writer(str(tmp_path), config).flush()
    content = read(tmp_path).PluginTagToContent("hparams")
    assert content, "no hparams summary"
    data = plugin_data_pb2.HParamsPluginData.FromString(next(iter(content.values())))
    hparams = data.session_start_info.hparams
    assert hparams["optim.learning_rate"].number_value == config.optim.learning_rate
    assert hparams["model.backbone"].string_value == config.model.backbone
    assert hparams["data.modalities"].string_value == str(list(config.data.modalities))
