"""Invoking the real handlers as Lambda would: one module per function (``functions/<name>/app.py``),
a Lambda context object, and a cap on concurrent executions.

Two ways to run a function:

- ``isolation="process"`` (the local stack): a pool of *instances*, each a worker process of its
  own that imported the function's module once (its cold start) and then serves one invocation
  at a time, as a Lambda execution environment does. A request that finds every instance busy
  starts another, up to the function's concurrency; beyond that it waits. Nothing mutable is
  shared between concurrent requests: module globals, the Powertools resolver (its
  ``current_event``), the logger's keys and the metrics buffer all live in the instance. Workers
  fork from a server that has already imported boto3, Powertools and pydantic, so a cold start
  costs only the function's own module. An invocation that outlives the function's timeout is
  killed with its instance ("Task timed out"), as on Lambda.
- ``isolation="inline"`` (the integration tests, which run inside moto's in-memory ``mock_aws``):
  the module is imported into this process and invocations run on the caller's thread, one at a
  time.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from tsunagu_local.resources import ACCOUNT, REGION, FunctionSpec

# Imported once by the fork server; every instance forks with them in memory.
PRELOAD = ["boto3", "botocore.session", "aws_lambda_powertools", "pydantic", "tsunagu_local.runtime"]
TIMEOUT_GRACE_S = 2.0


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


class FunctionError(Exception):
    """The handler raised inside its instance: carries the original type's name and message."""

    def __init__(self, type_name: str, message: str, trace: str = ""):
        super().__init__(message)
        self.type_name, self.trace = type_name, trace

    def __str__(self) -> str:
        return f"{self.type_name}: {self.args[0]}"


def _load_module(spec: FunctionSpec) -> ModuleType:
    module_file, _func = spec.handler.rsplit(".", 1)
    path = spec.code_uri / f"{module_file.replace('.', '/')}.py"
    s = importlib.util.spec_from_file_location(f"tsunagu_fn_{spec.logical_id}", path)
    assert s and s.loader
    mod = importlib.util.module_from_spec(s)
    s.loader.exec_module(mod)
    return mod


def _instance_main(spec: FunctionSpec, env: dict[str, str], conn: multiprocessing.connection.Connection) -> None:
    """One execution environment: import the module (cold start), then serve invocations one
    at a time until the pool closes the pipe."""
    os.environ.clear()
    os.environ.update(env)
    sys.path.insert(0, str(spec.code_uri))  # like /var/task on Lambda
    try:
        handler = getattr(_load_module(spec), spec.handler.rsplit(".", 1)[1])
    except BaseException as e:  # an init error: every invocation of this instance reports it
        conn.send(("init_error", type(e).__name__, str(e), traceback.format_exc()))
        return
    conn.send(("ready",))
    while True:
        try:
            event = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = handler(event, LambdaContext(spec.logical_id, spec.timeout))
            reply: tuple[Any, ...] = ("ok", result)
        except Exception as e:
            reply = ("error", type(e).__name__, str(e), traceback.format_exc())
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            conn.send(reply)
        except (TypeError, ValueError, AttributeError) as e:  # the result does not pickle
            conn.send(("error", type(e).__name__, f"handler result not serialisable: {e}", ""))


_ctx_lock = threading.Lock()
_ctx: Any = None


def _context() -> Any:
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _ctx = ctx
        return _ctx


class _Instance:
    def __init__(self, spec: FunctionSpec):
        self.spec = spec
        parent, child = _context().Pipe()
        self.conn = parent
        self.proc = _context().Process(
            target=_instance_main, args=(spec, dict(os.environ), child), name=f"λ {spec.logical_id}", daemon=True
        )
        self.proc.start()
        child.close()
        self.invocations = 0
        first = self._recv(60.0)
        if first[0] == "init_error":
            self.close()
            raise FunctionError(*first[1:])

    def _recv(self, timeout: float) -> tuple[Any, ...]:
        if not self.conn.poll(timeout):
            self.close()
            raise FunctionError("TimeoutError", f"Task timed out after {self.spec.timeout:.2f} seconds")
        try:
            msg: tuple[Any, ...] = self.conn.recv()
        except (EOFError, OSError) as e:
            self.close()
            raise FunctionError("RuntimeExitError", f"the instance exited ({self.proc.exitcode})") from e
        return msg

    def invoke(self, event: dict[str, Any]) -> Any:
        self.conn.send(event)
        self.invocations += 1
        msg = self._recv(self.spec.timeout + TIMEOUT_GRACE_S)
        if msg[0] == "ok":
            return msg[1]
        raise FunctionError(*msg[1:])

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2)
            if self.proc.is_alive():
                self.proc.kill()


class LocalFunction:
    def __init__(
        self, spec: FunctionSpec, concurrency: int = 8, isolation: Literal["inline", "process"] = "inline"
    ) -> None:
        self.spec = spec
        self.concurrency = concurrency
        self.isolation = isolation
        # inline
        self._module: ModuleType | None = None
        self._inline_lock = threading.Lock()
        # process
        self._pool_lock = threading.Condition()
        self._idle: list[_Instance] = []
        self._instances: list[_Instance] = []
        self._starting = 0
        self._closed = False
        self.cold_starts = 0

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def invoke(self, event: dict[str, Any]) -> Any:
        if self.isolation == "inline":
            with self._inline_lock:  # one invocation at a time, as one Lambda instance
                if self._module is None:
                    self._module = _load_module(self.spec)
                handler = getattr(self._module, self.spec.handler.rsplit(".", 1)[1])
                return handler(event, LambdaContext(self.spec.logical_id, self.spec.timeout))
        inst = self._acquire()
        try:
            return inst.invoke(event)
        finally:
            self._release(inst)

    def _acquire(self) -> _Instance:
        with self._pool_lock:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.name} is shut down")
                while self._idle:
                    inst = self._idle.pop()
                    if inst.alive:
                        return inst
                    self._instances.remove(inst)
                if len(self._instances) + self._starting < self.concurrency:
                    self._starting += 1
                    break
                self._pool_lock.wait()
        try:
            inst = _Instance(self.spec)  # the cold start, outside the lock
        finally:
            with self._pool_lock:
                self._starting -= 1
                self._pool_lock.notify()
        with self._pool_lock:
            self._instances.append(inst)
            self.cold_starts += 1
        return inst

    def _release(self, inst: _Instance) -> None:
        with self._pool_lock:
            if inst.alive and not self._closed:
                self._idle.append(inst)
            else:
                if inst in self._instances:
                    self._instances.remove(inst)
                inst.close()
            self._pool_lock.notify()

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            instances, self._instances, self._idle = list(self._instances), [], []
            self._pool_lock.notify_all()
        for inst in instances:
            inst.close()


def start_fork_server() -> None:
    """Start the fork server now (it imports the heavy libraries once) rather than on the first
    request."""
    _context()
    from multiprocessing import forkserver

    forkserver.ensure_running()
