"""METR Task Standard families: loading, manifest validation, and the rd-optimise suite scored in Docker."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jsonschema
import pytest
import yaml

from lab.tasks import (
    BUNDLED,
    TaskScoringError,
    TaskSpecError,
    get_task,
    load_metr_family,
    load_suite,
    manifest_schema,
    score_task,
    unavailable_reason,
)
from lab.tasks.environment import TaskEnvironment, TaskUnavailable

RD = BUNDLED / "rd-optimise"
SOLUTIONS = RD / "solutions"
# (family, file the solver edits, file of the reference solution, normalisation tolerance)
FAMILIES = [("tiny_model_loss", "solution.py", 1e-9), ("broken_layer", "model.py", 1e-9),
            ("count_close_pairs", "solution.py", 0.15)]


def test_schema_copy_is_metr_schema(shared_data):
    shipped = manifest_schema()
    assert shipped == json.loads((shared_data / "metr-task-standard/task-family-manifest.schema.json").read_text())
    assert "METR" in (BUNDLED.parent / "schemas" / "LICENSE-METR.txt").read_text()


def test_suite_loads_with_manifest_resources():
    tasks = {t.id: t for t in load_suite("rd-optimise")}
    assert len({tid.split("/")[0] for tid in tasks}) >= 3
    for fam, _, _ in FAMILIES:
        manifest = yaml.safe_load((RD / fam / "manifest.yaml").read_text())
        jsonschema.validate(manifest, manifest_schema())
        main, gpu = tasks[f"{fam}/main"], tasks[f"{fam}/gpu"]
        assert main.kind == "rd" and main.resources.gpus == 0 and gpu.resources.gpus == 1
        assert main.scoring.intermediate and main.scoring.visible_to_agent
        assert main.sandbox.user == "agent" and main.sandbox.workdir == "/home/agent"
        assert main.scoring.starting_score == manifest["tasks"]["main"]["meta"]["starting_score"]
        assert main.metr.family == fam and main.metr.standard_version == "0.5.0"


@pytest.mark.parametrize("fam, edited, tol", FAMILIES[:2])
def test_deterministic_scores_match_manifest_on_host(fam, edited, tol, tmp_path):
    """The scorer run directly: starting and reference raw scores are exactly the manifest's."""
    t = get_task(f"rd-optimise/{fam}/main")
    extra = ["--labels", str(RD / fam / "test_labels.json"), "--seed", "202"] if fam == "broken_layer" else []
    raw = {}
    for which, path in (("start", RD / fam / "assets" / edited), ("ref", SOLUTIONS / fam / edited)):
        out = subprocess.run([sys.executable, str(RD / fam / "assets" / "score.py"), "--solution", str(path), *extra],
                             capture_output=True, text=True, check=True, cwd=tmp_path)
        raw[which] = json.loads(out.stdout.splitlines()[-1])["score"]
    assert raw == {"start": t.scoring.starting_score, "ref": t.scoring.reference_score}
    assert t.scoring.normalise(raw["start"]) == 0.0 and t.scoring.normalise(raw["ref"]) == 1.0


@pytest.mark.docker
@pytest.mark.parametrize("fam, edited, tol", FAMILIES)
def test_starting_scores_zero_reference_scores_one_in_docker(docker_base, fam, edited, tol):
    t = get_task(f"rd-optimise/{fam}/main")
    with TaskEnvironment(t) as env:
        sb = env.sandbox
        assert sb.exec("cat /root/task-family/*/*.py").exit_code != 0      # the family is hidden from the agent
        assert sb.exec("id -un").stdout.strip() == "agent"
        start = env.session.intermediate_score()
        assert start.message and start.score is not None
        sb.write_file(f"/home/agent/{edited}", (SOLUTIONS / fam / edited).read_bytes())  # the agent edits
        env.session.intermediate_score()
        final = {s.scorer: s.value for s in score_task(t, "", session=env.session)}
    assert t.scoring.normalise(start.score) == pytest.approx(0.0, abs=tol)
    assert final["normalized_score"] == pytest.approx(1.0, abs=tol)
    assert [e["score"] for e in env.session.score_log][0] == start.score


def test_gpu_variant_is_skipped_without_gpu():
    t = get_task("rd-optimise/broken_layer/gpu")
    reason = unavailable_reason(t)
    if reason is None:
        pytest.skip("this machine has a GPU: the GPU variant runs (see test_gpu_variant_runs)")
    assert "needs 1 GPU" in reason and "broken_layer/gpu" in reason
    with pytest.raises(TaskUnavailable, match="needs 1 GPU"):
        TaskEnvironment(t).__enter__()


@pytest.mark.docker
def test_gpu_variant_runs(docker_base):
    t = get_task("rd-optimise/broken_layer/gpu")
    reason = unavailable_reason(t)
    if reason:
        pytest.skip(reason)
    with TaskEnvironment(t) as env:
        env.sandbox.write_file("/home/agent/model.py", (SOLUTIONS / "broken_layer/model.py").read_bytes())
        scores = {s.scorer: s.value for s in score_task(t, "", session=env.session)}
    assert scores["normalized_score"] == 1.0


# -- bad families -----------------------------------------------------------------------------------------

BAD = '''
class TaskFamily:
    standard_version = "0.5.0"

    @staticmethod
    def get_tasks():
        return {"raises": {}, "none": {}, "hangs": {}}

    @staticmethod
    def get_instructions(t):
        return "do it"

    @staticmethod
    def score(t, submission):
        import time
        if t is TaskFamily.get_tasks().get("x"):
            return 1.0
        name = submission.strip()
        if name == "raises":
            raise RuntimeError("scorer exploded")
        if name == "hangs":
            time.sleep(60)
        return None
'''


def _family(tmp_path, source: str, manifest: str | None = None, name: str = "bad_family"):
    d = tmp_path / name
    d.mkdir()
    (d / f"{name}.py").write_text(textwrap.dedent(source))
    if manifest is not None:
        (d / "manifest.yaml").write_text(manifest)
    return d


def test_bad_family_files(tmp_path):
    d = tmp_path / "empty_family"
    d.mkdir()
    with pytest.raises(TaskSpecError, match="needs empty_family.py"):
        load_metr_family(d)
    with pytest.raises(TaskSpecError, match="defines no TaskFamily"):
        load_metr_family(_family(tmp_path, "x = 1\n", name="nofam"))
    with pytest.raises(TaskSpecError, match=r"needs score\(\) or intermediate_score\(\)"):
        load_metr_family(_family(tmp_path, "class TaskFamily:\n    get_tasks = staticmethod(lambda: {'a': {}})\n"
                                           "    get_instructions = staticmethod(lambda t: 'x')\n", name="noscore"))
    with pytest.raises(TaskSpecError, match=r"importing the task family failed: ZeroDivisionError"):
        load_metr_family(_family(tmp_path, "1/0\n", name="broken"))
    bad_manifest = "tasks:\n  raises:\n    resources:\n      cpus: many\n"
    with pytest.raises(TaskSpecError, match=r"manifest.yaml:4: manifest field 'tasks.raises.resources.cpus'"):
        load_metr_family(_family(tmp_path, BAD, bad_manifest, name="badmanifest"))


@pytest.mark.docker
def test_score_that_raises_returns_nothing_or_hangs_names_the_task(docker_base, tmp_path):
    tasks = {t.metr.task: t for t in load_metr_family(_family(tmp_path, BAD), suite="bad")}
    hangs = tasks["hangs"].model_copy(update={"scoring": tasks["hangs"].scoring.model_copy(
        update={"script": tasks["hangs"].scoring.script.model_copy(update={"timeout_s": 2})})})
    with TaskEnvironment(tasks["raises"]) as env:
        with pytest.raises(TaskScoringError, match=r"task 'bad/bad_family/raises': score\(\) raised RuntimeError: "
                                                   r"scorer exploded"):
            score_task(tasks["raises"], "raises", session=env.session)
        with pytest.raises(TaskScoringError, match=r"task 'bad/bad_family/none': scoring returned None, not a number"):
            score_task(tasks["none"], "none", sandbox=env.sandbox)
        with pytest.raises(TaskScoringError, match=r"task 'bad/bad_family/hangs': score\(\) timed out after 2s"):
            score_task(hangs, "hangs", sandbox=env.sandbox)
        assert env.sandbox.exec("echo still usable").stdout.strip() == "still usable"
