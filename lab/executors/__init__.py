"""Executors: where a batch's runs execute. ``local`` (threads here, the default) or ``ray`` (a Ray cluster);
more register in :data:`EXECUTORS`.

```python
Runner(store, executor=RayExecutor("10.0.0.5:6379")).run(experiment)
```
"""

from lab.executors.base import EXECUTORS, Batch, Executor, ExecutorError, get_executor
from lab.executors.local import LocalExecutor
from lab.executors.ray_executor import RayExecutor

__all__ = ["EXECUTORS", "Batch", "Executor", "ExecutorError", "LocalExecutor", "RayExecutor", "get_executor"]
