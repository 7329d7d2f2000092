"""Using every local GPU: where a local model's replicas go, how calls spread over them, and what
``load_model`` builds for a given set of GPUs (simulated: this machine has none)."""

from __future__ import annotations

import threading

import pytest

from lab.models import Message, ModelError, ScriptedModel
from lab.models import replicas as rp

GB = 10**9


def test_one_replica_per_gpu_that_holds_it_else_spread_else_cpu():
    assert rp.replica_devices(1 * GB, []) == ["cpu"]
    assert rp.replica_devices(1 * GB, [80 * GB] * 4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    # a GPU mostly used by something else gets no replica
    assert rp.replica_devices(10 * GB, [80 * GB, 5 * GB, 40 * GB]) == ["cuda:0", "cuda:2"]
    # larger than any one GPU (with headroom): one copy over all of them
    assert rp.replica_devices(70 * GB, [80 * GB, 80 * GB]) == ["auto"]
    assert rp.replica_devices(70 * GB, [80 * GB, 80 * GB], headroom=1.1) == ["cuda:0", "cuda:1"]


def test_weights_bytes_counts_weight_files_only(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model-2.safetensors").write_bytes(b"x" * 500)
    (tmp_path / "config.json").write_text("{}")
    assert rp.weights_bytes(tmp_path) == 1500
    assert rp.weights_bytes(tmp_path / "model.safetensors") == 1000


def test_calls_go_to_the_least_busy_replica():
    gate, started = threading.Event(), threading.Semaphore(0)

    def slow(messages):
        started.release()
        gate.wait(10)
        return "slow"

    a, b = ScriptedModel(slow, name="m"), ScriptedModel(lambda m: "fast", name="m")
    model = rp.ReplicatedModel([a, b])
    t = threading.Thread(target=model.chat, args=([Message("user", "hi")],))
    t.start()
    assert started.acquire(timeout=10)  # replica 0 is busy with the first call
    assert model.in_flight == [1, 0]
    assert model.chat([Message("user", "hi")]).message.content == "fast"
    gate.set()
    t.join()
    assert model.in_flight == [0, 0] and len(a.requests) == len(b.requests) == 1
    assert model.name == "m" and model.remaining == 0  # other attributes are the first replica's


class FakeCuda:
    def __init__(self, free: list[int]):
        self.free = free

    def is_available(self):
        return bool(self.free)

    def device_count(self):
        return len(self.free)

    def mem_get_info(self, i):
        return self.free[i], 80 * GB


@pytest.mark.parametrize(("free", "devices"), [
    ([80 * GB, 80 * GB, 80 * GB], ["cuda:0", "cuda:1", "cuda:2"]),
    ([80 * GB], ["cuda:0"]),
    ([1000, 1000], ["auto"]),
])
def test_load_local_builds_one_model_per_placement(monkeypatch, tmp_path, free, devices):
    import torch

    import lab.models.transformers_backend as tb

    (tmp_path / "model.safetensors").write_bytes(b"x" * 4000)
    built = []

    class Fake:
        def __init__(self, path, *, name, device, **options):
            built.append(device)
            self.name = name

    monkeypatch.setattr(torch, "cuda", FakeCuda(free))
    monkeypatch.setattr(tb, "TransformersModel", Fake)
    model = rp.load_local(tmp_path, name="hf:x")
    assert built == devices
    assert isinstance(model, rp.ReplicatedModel) == (len(devices) > 1)
    built.clear()
    rp.load_local(tmp_path, name="hf:x", device="cpu")  # an explicit device is kept
    assert built == ["cpu"]


def test_a_named_gpu_without_cuda_is_a_clear_error(tmp_path):
    from lab.models.transformers_backend import TransformersModel

    (tmp_path / "config.json").write_text("{}")  # the device is checked before any weights are read
    with pytest.raises(ModelError, match="device='cuda:1' requested but no CUDA device"):
        TransformersModel(tmp_path, device="cuda:1")
