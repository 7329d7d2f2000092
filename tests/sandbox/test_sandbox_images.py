"""Image definitions and builds: content-hash tags, rebuild only on change, parents first, clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.sandbox import SandboxSpec, open_sandbox
from lab.sandbox.images import (
    HASH_LABEL,
    IMAGE_LABEL,
    ImageBuildError,
    build,
    content_hash,
    definitions,
    parents,
    status,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def defs(tmp_path, monkeypatch, docker_api):
    """A private sandboxes/ directory with one image built FROM expertlab/base; its images removed after."""
    root = tmp_path / "sandboxes"
    (root / "labtest-tool").mkdir(parents=True)
    (root / "labtest-tool" / "Dockerfile").write_text(
        "FROM expertlab/base\nCOPY tool.sh /opt/tool.sh\nUSER agent\nWORKDIR /work\n")
    (root / "labtest-tool" / "tool.sh").write_text("echo v1\n")
    (root / "base").symlink_to(REPO / "sandboxes" / "base")
    monkeypatch.setenv("LAB_SANDBOXES", str(root))
    yield root
    for img in docker_api.images.list(name="expertlab/labtest-tool"):
        docker_api.images.remove(img.id, force=True)


def test_the_repository_definitions_parse():
    found = definitions(REPO / "sandboxes")
    assert "base" in found
    assert parents(found["base"]) == []
    for name, d in found.items():
        if name != "base":
            assert "base" in parents(d), f"{name} should build FROM expertlab/base"


def test_content_hash_follows_files_and_parents(tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM expertlab/base\n")
    h1 = content_hash(d, ["sha256:a"])
    assert content_hash(d, ["sha256:a"]) == h1
    assert content_hash(d, ["sha256:b"]) != h1
    (d / "extra.txt").write_text("x")
    assert content_hash(d, ["sha256:a"]) != h1


def test_build_tags_by_content_reuses_and_rebuilds_on_change(defs, docker_api):
    logs: list[str] = []
    tag1 = build(["labtest-tool"], log=logs.append)[-1]
    img = docker_api.images.get(tag1)
    assert img.labels[IMAGE_LABEL] == "labtest-tool" and tag1.endswith(":" + img.labels[HASH_LABEL])
    assert docker_api.images.get("expertlab/labtest-tool:latest").id == img.id
    assert build(["labtest-tool"], log=logs.append)[-1] == tag1
    assert f"{tag1} up to date" in logs and docker_api.images.get(tag1).id == img.id
    with open_sandbox(SandboxSpec(image="expertlab/labtest-tool")) as sb:
        assert sb.exec("sh /opt/tool.sh").stdout == "v1\n"
    (defs / "labtest-tool" / "tool.sh").write_text("echo v2\n")
    assert [s.built for s in status(docker_api, ["labtest-tool"])] == [False]
    tag2 = build(["labtest-tool"], log=logs.append)[-1]
    assert tag2 != tag1 and [s.built for s in status(docker_api, ["labtest-tool"])] == [True]
    assert not any(tag1 in i.tags for i in docker_api.images.list(name="expertlab/labtest-tool"))  # stale untagged
    with open_sandbox(SandboxSpec(image="expertlab/labtest-tool")) as sb:
        assert sb.exec("sh /opt/tool.sh").stdout == "v2\n"


def test_build_errors_are_clear(defs):
    with pytest.raises(ImageBuildError, match="no sandbox definition 'nope'"):
        build(["nope"])
    (defs / "labtest-tool" / "Dockerfile").write_text("FROM expertlab/base\nRUN exit 7\n")
    with pytest.raises(ImageBuildError, match="building labtest-tool failed"):
        build(["labtest-tool"])
    (defs / "a").mkdir()
    (defs / "a" / "Dockerfile").write_text("FROM expertlab/b\n")
    (defs / "b").mkdir()
    (defs / "b" / "Dockerfile").write_text("FROM expertlab/a\n")
    with pytest.raises(ImageBuildError, match="cycle"):
        build(["a"])


def test_cli_build_and_ls(defs):
    lab = str(REPO / ".venv" / "bin" / "lab")
    r = subprocess.run([lab, "sandbox", "build", "labtest-tool"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("expertlab/labtest-tool:")
    ls = subprocess.run([lab, "sandbox", "ls"], capture_output=True, text=True)
    assert ls.returncode == 0 and "labtest-tool" in ls.stdout and "built" in ls.stdout
    bad = subprocess.run([lab, "sandbox", "build", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no sandbox definition 'nope'" in bad.stderr


def test_wheelhouse_that_cannot_be_fetched_is_a_clear_error(tmp_path):
    """`lab sandbox build` fetches `<house>-wheels.txt` with pip download; a requirement no index has fails the
    build naming the file, and leaves no half-filled wheelhouse."""
    import pytest

    from lab.sandbox.images import ImageBuildError, fetch_wheels

    d = tmp_path / "img"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM scratch\n")
    (d / "extra-wheels.txt").write_text("expertlab-no-such-package-anywhere==0.0.1\n")
    with pytest.raises(ImageBuildError, match=r"extra-wheels.txt: pip download failed"):
        fetch_wheels(d, log=lambda _line: None)
    assert not (d / "extra-wheels").exists()
    assert fetch_wheels(tmp_path, log=lambda _line: None) == []  # no wheelhouse: nothing to fetch
