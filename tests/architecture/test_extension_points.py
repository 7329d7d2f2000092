"""Extension points: one generic registry; a new loop, scorer, sandbox backend, executor or model prefix is one
registration that experiments, the runner, the launcher and the CLI then find by name; the ``Store`` protocol
that local and remote stores implement."""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import sys

import pytest

from lab.agents.react import ReActAgent
from lab.agents.run import LOOPS
from lab.errors import LabError
from lab.executors import EXECUTORS, get_executor
from lab.experiment import Experiment, ExperimentError
from lab.models import ScriptedModel, ToolCall
from lab.models.registry import MODEL_PREFIXES, ModelPrefix, check_model_name, load_model
from lab.pipeline import run_combo
from lab.registry import Registry
from lab.runner import Runner
from lab.sandbox import SandboxSpec, open_sandbox
from lab.sandbox.factory import SANDBOX_BACKENDS
from lab.scoring import SCORERS, get_scorer, register_scorer
from lab.traces.protocol import Store
from lab.traces.schema import Provenance, Score


class Boom(LabError):
    pass


def test_registry_registers_finds_and_explains():
    reg: Registry[type] = Registry("widget", error=Boom)

    @reg.register("table")
    class Table:
        pass

    assert reg.get("table") is Table and "table" in reg and reg.names() == ["table"] and list(reg) == ["table"]
    reg.register("table", Table)  # the same object again is fine
    with pytest.raises(Boom, match="a widget named 'table' is already registered"):
        reg.register("table", object)
    with pytest.raises(Boom, match="unknown widget 'tabel'; known: table"):
        reg.get("tabel")
    reg.remove("table")
    assert "table" not in reg


def test_registry_imports_its_modules_on_first_lookup(tmp_path, monkeypatch):
    pkg = tmp_path / "plugins_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "alpha.py").write_text("from plugins_reg import REG\nREG.register('alpha', 1)\nTHING = 'a'\n")
    (pkg / "beta.py").write_text("import not_installed_dependency_xyz\n")  # optional dependency missing
    (pkg / "_private.py").write_text("raise RuntimeError('private modules are not scanned')\n")
    (tmp_path / "plugins_reg.py").write_text(
        "from lab.registry import Registry\n"
        "REG = Registry('plugin', modules=('plugins_pkg',))\n"
        "HARVEST = Registry('thing', modules=('plugins_pkg.alpha',), "
        "harvest=lambda m: [(k.lower(), v) for k, v in vars(m).items() if k == 'THING'])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import plugins_reg

    assert "plugins_pkg.alpha" not in sys.modules
    assert plugins_reg.REG.names() == ["alpha"] and plugins_reg.HARVEST.get("thing") == "a"


def test_builtin_entries_are_registered():
    assert {"dera", "react", "repo_setup"} <= set(LOOPS.names())
    assert {"exact_match", "json_match", "llm_judge"} <= set(SCORERS.names())
    assert {"docker", "local"} <= set(SANDBOX_BACKENDS.names())
    assert {"local", "ray"} <= set(EXECUTORS.names())
    assert {"smollm2", "hf", "openai", "scripted"} <= set(MODEL_PREFIXES.names())


# -- one registration each: a loop, a scorer, an executor, a sandbox backend, a model prefix -------------------

class TerseReAct(ReActAgent):
    """A ReAct variant: everything from ReActAgent, another system prompt."""

    name = "terse_react"

    def __init__(self, model, tools=(), **kwargs):
        super().__init__(model, tools, system_prompt="One tool call per step; submit early.", **kwargs)


@pytest.fixture
def extensions():
    LOOPS.register("terse_react", TerseReAct)

    @register_scorer("shouting")
    class Shouting:
        name = "shouting"

        def __call__(self, output, target=None, **context):
            return Score(self.name, float(str(output).isupper()), Provenance.RULE.value, item_id=context["item_id"])

    @EXECUTORS.register("inline")
    class InlineExecutor:
        """Runs each combination at once, in the caller's thread."""

        name = "inline"

        def __init__(self, address=None):
            self.address = address

        def start(self, context, workers):
            return InlineBatch(context)

    MODEL_PREFIXES.register("shout", ModelPrefix(
        load=lambda rest, name, **o: ScriptedModel([ToolCall("", "submit", {"answer": rest.upper()})], name=name)))
    yield
    for reg, name in ((LOOPS, "terse_react"), (SCORERS, "shouting"), (EXECUTORS, "inline"),
                      (MODEL_PREFIXES, "shout")):
        reg.remove(name)


class InlineBatch:
    def __init__(self, context):
        self.context = context

    def submit(self, combo, key, resume_id):
        fut = cf.Future()
        fut.set_result(run_combo(self.context, combo, key, resume_id))
        return fut

    def shutdown(self, *, cancel=False):
        pass


def test_registered_loop_scorer_executor_and_model_prefix_run_an_experiment(extensions, store):
    exp = Experiment.from_dict({"name": "ext", "tasks": ["medqa-open/dev-0001"], "loops": ["terse_react"],
                                "models": ["shout:ceftriaxone"], "scorers": [{"scorer": "shouting"}],
                                "task_scoring": False})
    (o,) = Runner(store, progress=False, executor=get_executor("inline")).run(exp).outcomes
    assert o.status == "done" and o.answer == "CEFTRIAXONE" and o.scores == {"shouting": 1.0}
    assert store.get_run(o.run_id)["config"]["loop"]["system_prompt"].startswith("One tool call")
    assert get_scorer("shouting")("no", item_id="i").value == 0.0  # built by name like any scorer
    check_model_name("shout:x")
    assert load_model("shout:x").name == "shout:x"


def test_unregistered_names_are_refused_with_the_known_ones():
    with pytest.raises(ExperimentError, match="field 'loops.0.loop': .*unknown loop 'terse_react'; known: dera"):
        Experiment.from_dict({"name": "x", "tasks": ["chem-tools"], "loops": ["terse_react"], "models": ["m"]})
    with pytest.raises(LabError, match="unknown sandbox backend 'podman'; known: docker, local"):
        open_sandbox(SandboxSpec(backend="podman"))


def test_registered_sandbox_backend_opens_through_open_sandbox(tmp_path):
    from lab.sandbox.local import LocalSandbox

    opened = []

    @SANDBOX_BACKENDS.register("recording_local")
    class RecordingLocal(LocalSandbox):
        def __init__(self, spec, **kw):
            opened.append(spec.backend)
            super().__init__(spec, **kw)

    try:
        with open_sandbox(SandboxSpec(backend="recording_local")) as sb:
            assert sb.exec("echo hi").stdout.strip() == "hi"
        assert opened == ["recording_local"]
    finally:
        SANDBOX_BACKENDS.remove("recording_local")


# -- the Store protocol -------------------------------------------------------------------------------------

def _protocol_methods() -> list[str]:
    return [n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")]


def test_local_and_remote_stores_implement_the_store_protocol(store):
    from lab.executors.remote_store import RemoteStore

    remote = RemoteStore(sink=None, path=str(store.path))
    assert isinstance(store, Store) and isinstance(remote, Store)
    for name in _protocol_methods():
        want = inspect.signature(getattr(Store, name))
        for impl in (type(store), RemoteStore):
            got = inspect.signature(getattr(impl, name))
            assert list(got.parameters)[:len(want.parameters)] == list(want.parameters) or \
                "fields" in want.parameters, (impl.__name__, name, got, want)


def test_store_sink_serves_only_protocol_methods(tmp_path):
    from lab.executors.remote_store import StoreSink

    sink = StoreSink(str(tmp_path / "s.db"))
    rid = sink.store_call("create_run", ({"task": "t"},), {})
    assert sink.store_call("get_run", (rid,), {})["task"] == "t"
    assert sink.store_call("last_elapsed", (rid,), {}) == 0
    for method in ("query", "_write", "close"):
        with pytest.raises(AttributeError, match="not callable remotely"):
            sink.store_call(method, ("DELETE FROM runs",), {})
