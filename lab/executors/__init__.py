"""Executors: where a batch's runs execute. ``local`` (threads here, the default) or ``ray`` (a Ray cluster).

```python
Runner(store, executor=RayExecutor("10.0.0.5:6379")).run(experiment)
```
"""

from lab.executors.local import Batch, Executor, LocalExecutor
from lab.executors.ray_executor import ExecutorError, RayExecutor

EXECUTORS = ("local", "ray")


def get_executor(name: str = "local", *, address: str | None = None) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``; ``address`` is the Ray cluster's).

    Raises:
        ExecutorError: Unknown name, or an address given for the local executor.
    """
    if name == "local":
        if address:
            raise ExecutorError("--address is for the ray executor (use --executor ray)")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise ExecutorError(f"unknown executor {name!r}; expected one of: {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Batch", "Executor", "ExecutorError", "LocalExecutor", "RayExecutor", "get_executor"]
