"""Packaging (issue #26): dependency ranges, not pins, and an install that keeps the host's stack.

A GPU/TPU host or Colab brings its own JAX with the matching CUDA/TPU plugin; `pip install jaxreid`
must not replace it. pyproject.toml therefore declares lower bounds only, and CI runs the suite on
two locked sets: `constraints/newest.txt` (the full suite) and `constraints/lower.txt` (the fast
tests, on exactly the declared lower bounds). These tests check the declarations against both
locks, and ask pip itself (a dry run, offline: `--no-index`) what installing jaxreid into an
environment with a newer JAX would change.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import site
import subprocess
import sys
import venv

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; 3.10 has no TOML reader built in
from packaging.requirements import Requirement  # noqa: E402  (pip's own dependency)
from packaging.utils import canonicalize_name  # noqa: E402
from packaging.version import Version  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Libraries a GPU/TPU host or Colab already has, whose versions the host decides.
HOST_STACK = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
              "tensorflow-cpu")
# The release named in issue #26 (2026-10), newer than the lower bound of every supported stack.
NEWER_JAX = "0.12.0.1"


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _requirements() -> list[Requirement]:
    """Every requirement of pyproject.toml: `dependencies` and each extra's."""
    project = _project()
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def _lock(name: str) -> dict[str, str]:
    """constraints/<name>: {canonical package name: pinned version}; every line `name==version`."""
    path = ROOT / "constraints" / name
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"{path}:{number}: {line!r} is not 'name==version'"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_host_stack_is_declared_by_lower_bounds_only():
    """No ==, ~=, < or <= on the libraries the host decides (the regression of issue #26)."""
    for req in _requirements():
        if canonicalize_name(req.name) in HOST_STACK:
            operators = {spec.operator for spec in req.specifier}
            assert operators == {">="}, f"pyproject.toml: {req} must be a lower bound only (>=)"


def test_lower_bounds_are_the_versions_the_lower_bound_job_runs():
    """Each declared `>=` bound is pinned, exactly, in constraints/lower.txt; so a raised bound
    is tested (and a bound that is not raised keeps being tested) by CI's lower-bound job."""
    lower = _lock("lower.txt")
    for req in _requirements():
        for spec in req.specifier:
            if spec.operator == ">=":
                name = canonicalize_name(req.name)
                pinned = lower.get(name)
                assert pinned is not None and Version(pinned) == Version(spec.version), (
                    f"pyproject.toml declares {req}; constraints/lower.txt pins "
                    f"{name}=={lower.get(name)} (expected {spec.version})")


@pytest.mark.parametrize("lock, python", [("lower.txt", "3.11"), ("newest.txt", "3.12")])
def test_locks_satisfy_the_declared_ranges(lock, python):
    """Both CI locks lie inside the declared ranges (markers read for the lock's Python)."""
    pins = _lock(lock)
    environment = {"python_version": python, "python_full_version": python + ".0",
                   "sys_platform": "linux", "platform_system": "Linux"}
    for req in _requirements():
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        if any(spec.operator == "==" for spec in req.specifier):
            continue  # pinned in pyproject.toml itself (torch, a test reference only)
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints/{lock} pins no version of {name} ({req})"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints/{lock}: {name}=={pins[name]} is outside pyproject.toml's {req}")


def test_newest_lock_is_at_least_the_lower_lock():
    lower, newest = _lock("lower.txt"), _lock("newest.txt")
    for name in HOST_STACK:
        if name in lower and name in newest:
            assert Version(newest[name]) >= Version(lower[name]), (name, lower[name], newest[name])


def _fake_dist(site_dir: pathlib.Path, name: str, version: str) -> None:
    """An installed-distribution record (dist-info METADATA) of `name` `version`, no code."""
    info = site_dir / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    """pyproject.toml and README.md of this checkout with an empty package: what pip reads to
    resolve jaxreid's requirements, without writing build files into the checkout."""
    copy = tmp_path_factory.mktemp("jaxreid_src")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copy(ROOT / "README.md", copy / "README.md")
    (copy / "jaxreid").mkdir()
    (copy / "jaxreid" / "__init__.py").write_text("")
    return copy


@pytest.mark.parametrize("host_jax", [None, NEWER_JAX], ids=["installed-jax", "jax-" + NEWER_JAX])
def test_installing_jaxreid_changes_nothing_in_the_host_stack(tmp_path, project_copy, host_jax):
    """`pip install` of jaxreid into this environment, with its JAX as installed or replaced by
    a newer release: pip's dry-run report installs jaxreid and nothing else.

    The environment is a venv seeing this one's packages (a .pth), whose own site-packages comes
    first, so a fake `jax`/`jaxlib` dist-info there is the JAX pip sees. `--no-index`: pip may use
    only what is installed, so wanting any other version of anything fails the test (offline)."""
    # The build backend runs in this environment (--no-build-isolation): pyproject.toml's
    # [build-system] asks for setuptools >= 77 (an SPDX `license` string).
    pytest.importorskip("setuptools", minversion="77")
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site_dir = pathlib.Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    host_dirs = [*site.getsitepackages(), site.getusersitepackages()]
    (site_dir / "host.pth").write_text("\n".join(host_dirs) + "\n")
    if host_jax is not None:
        _fake_dist(site_dir, "jax", host_jax)
        _fake_dist(site_dir, "jaxlib", host_jax)
    seen = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('jax'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    host_version = host_jax or seen
    assert seen == host_version, f"the test venv sees jax {seen}, not {host_version}"

    report = tmp_path / "report.json"
    # A user's pip, not CI's: .ci/run pins its lock through PIP_CONSTRAINT (and a user may set
    # other PIP_* options), which would pin jax to the lock's release instead of the host's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    result = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", "--quiet", "--report", str(report), str(project_copy)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == 0, (
        f"pip would need releases other than those installed (jax {host_version}):\n"
        + result.stderr[-3000:])
    install = {item["metadata"]["name"]: item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    assert install == {"jaxreid": _project()["version"]}, (
        f"installing jaxreid beside jax {host_version} would install {install}")
