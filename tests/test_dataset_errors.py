"""A prepared dataset that is corrupt, half-written or stale is refused with the file to act
on (issue #24).

SYSU-MM01's RGB config is built once from its 8-image dummy folder; each test copies the
prepared tree and breaks the copy as a user's disk or an interrupted copy would: a truncated
shard, a flipped byte, a deleted dataset_info.json, another manual folder.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from jaxreid import config as config_lib
from jaxreid.data import sources

REPO = pathlib.Path(__file__).resolve().parents[1]
MANUAL = REPO / "datasets" / "sysu_mm01" / "dummy_data"


def data_config(data_dir, manual_dir=MANUAL):
    config = config_lib.default_config()
    config.data.name = "sysu_mm01"
    config.data.modalities = ("rgb", "infrared")
    config.data.data_dir = str(data_dir)
    config.data.manual_dir = str(manual_dir)
    config.data.image_size = (32, 16)
    return config.data


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A data directory with sysu_mm01/rgb and sysu_mm01/infrared prepared from the dummy
    folder (read only: tests copy it)."""
    data_dir = tmp_path_factory.mktemp("tfds")
    for modality in ("rgb", "infrared"):
        sources.prepared_builder(data_config(data_dir), modality)
    return data_dir


@pytest.fixture
def copy(prepared, tmp_path):
    """(data_dir, version folder of sysu_mm01/rgb, its train shard) of a fresh copy."""
    data_dir = tmp_path / "tfds"
    shutil.copytree(prepared, data_dir)
    version_dir = data_dir / "sysu_mm01" / "rgb" / "1.0.0"
    (shard,) = version_dir.glob("sysu_mm01-train.tfrecord-*")
    return data_dir, version_dir, shard


def load_error(data_dir, manual_dir=MANUAL, split="train") -> str:
    with pytest.raises(sources.PreparedDatasetError) as e:
        sources.load_image_set(data_config(data_dir, manual_dir), "rgb", split)
    return str(e.value)


def test_prepared_dataset_records_its_manual_folder(copy):
    data_dir, _, _ = copy
    builder = sources.prepared_builder(data_config(data_dir), "rgb")
    assert builder.info.metadata["manual_dir"] == os.path.realpath(MANUAL)
    assert builder.info.metadata["builder_version"] == "1.0.0"
    # The same folder spelt differently (relative, trailing slash) is the same source.
    relative = os.path.relpath(MANUAL) + os.sep
    assert len(sources.load_image_set(data_config(data_dir, relative), "rgb", "train")) == 4


@pytest.mark.parametrize("damage", ["truncate", "truncate_at_record", "flip_byte"])
def test_corrupt_shard_names_dataset_split_and_file(copy, damage):
    data_dir, version_dir, shard = copy
    data = shard.read_bytes()
    if damage == "truncate":  # Mid-record: the record's length says more than is left.
        shard.write_bytes(data[: _record_end(data, 2) + 20])
    elif damage == "truncate_at_record":  # Whole records only, as a copy cut between them.
        shard.write_bytes(data[: _record_end(data, 2)])
    else:  # A byte inside the first record's payload: its CRC no longer matches.
        data = bytearray(data)
        data[len(data) // 2] ^= 0x01
        shard.write_bytes(bytes(data))
    message = load_error(data_dir)
    for text in (
        "'train'",
        "sysu_mm01/rgb/1.0.0",
        str(version_dir),
        str(shard),
        f"delete {version_dir}",
        "config.data.manual_dir",
    ):
        assert text in message, f"{text!r} not in {message!r}"
    expected = {
        "truncate": "DataLossError: truncated record",
        "truncate_at_record": "truncated: 2 of its 4 records",
        "flip_byte": "DataLossError: corrupted record",
    }[damage]
    assert expected in message, message
    # The other splits of the same folder are intact and still load.
    assert len(sources.load_image_set(data_config(data_dir), "rgb", "test")) > 0


def _record_end(data: bytes, count: int) -> int:
    """Byte offset after the first `count` TFRecords: each is an 8-byte little-endian length,
    a 4-byte CRC of it, the payload and a 4-byte CRC of the payload."""
    offset = 0
    for _ in range(count):
        offset += 8 + 4 + int.from_bytes(data[offset : offset + 8], "little") + 4
    return offset


def test_missing_shard_is_named(copy):
    data_dir, version_dir, shard = copy
    shard.unlink()
    message = load_error(data_dir, manual_dir="")
    assert f"{shard} (missing)" in message and f"delete {version_dir}" in message


@pytest.mark.parametrize("manual_dir", [MANUAL, ""], ids=["with_manual_dir", "without"])
def test_missing_dataset_info_says_half_written(copy, manual_dir):
    data_dir, version_dir, _ = copy
    (version_dir / "dataset_info.json").unlink()
    message = load_error(data_dir, manual_dir)
    for text in (
        str(version_dir / "dataset_info.json"),
        "is missing",
        "written only in part",
        f"delete {version_dir}",
    ):
        assert text in message, f"{text!r} not in {message!r}"


def test_dataset_prepared_from_another_manual_folder_is_refused(copy, tmp_path):
    data_dir, version_dir, _ = copy
    other = tmp_path / "SYSU-MM01-full"
    shutil.copytree(MANUAL, other)
    message = load_error(data_dir, other)
    for text in (
        f"config.data.manual_dir={str(other)!r}",
        os.path.realpath(MANUAL),
        str(version_dir),
        "delete",
    ):
        assert text in message, f"{text!r} not in {message!r}"
    # The case: a folder that does not exist is never silently replaced by the build.
    message = load_error(data_dir, "/nonexistent/SYSU-MM01")
    assert "config.data.manual_dir='/nonexistent/SYSU-MM01': no such folder" in message
    # '' asks for whatever is prepared.
    assert len(sources.load_image_set(data_config(data_dir, ""), "rgb", "train")) == 4


def test_dataset_from_another_builder_version_is_refused(copy):
    data_dir, version_dir, _ = copy
    metadata = version_dir / "metadata.json"
    metadata.write_text(metadata.read_text().replace('"1.0.0"', '"0.9.0"'))
    message = load_error(data_dir)
    assert "builder version 0.9.0" in message and "1.0.0" in message, message


def _main(args, data_dir, workdir):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxreid.main",
            "--config=configs/sysu.py:quick",
            f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}",
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_error_line(run) -> str:
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, run.stderr[-3000:]
    return errors[0]


def test_main_prints_a_corrupt_dataset_as_one_error_line(copy, tmp_path):
    data_dir, _, shard = copy
    shard.write_bytes(shard.read_bytes()[:100])
    workdir = tmp_path / "run"
    line = _one_error_line(_main(["--config.data.manual_dir="], data_dir, workdir))
    assert str(shard) in line
    assert not workdir.exists()  # nothing left behind


def test_batch_larger_than_the_data_is_refused_leaving_nothing(copy, tmp_path):
    """configs/sysu.py:quick with P=4 on the dummy data (2 training identities): a ConfigError (one `Error:` line from jaxreid.main, as every
    ConfigError) before the work directory holds anything, which is then removed."""
    from jaxreid.training import supervised

    data_dir, _, _ = copy
    config = config_lib.load_config("configs/sysu.py:quick")
    config.batch.num_identities = 4
    config.data.data_dir = str(data_dir)
    config.data.manual_dir = str(MANUAL)
    workdir = tmp_path / "run"
    with pytest.raises(config_lib.ConfigError) as e:
        supervised.train_and_evaluate(config, str(workdir))
    assert "config.batch.num_identities=4 exceeds the 2 training identities" in str(e.value)
    assert "--config.batch.num_identities=2" in str(e.value)
    assert not workdir.exists()
