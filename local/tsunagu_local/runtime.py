"""Invoking the real handlers in this process, as Lambda would: one module per function
(``functions/<name>/app.py``), a Lambda context object, and a cap on concurrent executions."""

from __future__ import annotations

import importlib.util
import threading
import time
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tsunagu_local.resources import ACCOUNT, REGION, FunctionSpec


@dataclass
class LambdaContext:
    function_name: str
    timeout_s: int
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    def __init__(self, spec: FunctionSpec, concurrency: int = 8):
        self.spec = spec
        self._module: ModuleType | None = None
        self._load_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def _handler(self) -> Any:
        with self._load_lock:
            if self._module is None:
                module_file, _func = self.spec.handler.rsplit(".", 1)
                path = self.spec.code_uri / f"{module_file.replace('.', '/')}.py"
                mod_name = f"tsunagu_fn_{self.spec.logical_id}"
                s = importlib.util.spec_from_file_location(mod_name, path)
                assert s and s.loader
                mod = importlib.util.module_from_spec(s)
                s.loader.exec_module(mod)
                self._module = mod
            return getattr(self._module, self.spec.handler.rsplit(".", 1)[1])

    def invoke(self, event: dict[str, Any]) -> Any:
        handler = self._handler()
        with self._slots:
            return handler(event, LambdaContext(self.spec.logical_id, self.spec.timeout))
