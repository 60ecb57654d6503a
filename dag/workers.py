"""Where node runs execute: in this process, one after another, or as Ray tasks with resource requests.

The executor only sees the `Worker` protocol: submit a call with the node's resources, wait for at
least one to finish, shut down. `worker=sequential|ray` (configs/worker/) picks the class with
`_target_`. Ray is started lazily at the first submission, so a run with nothing to do never pays
for it: locally with `ray.init(num_cpus=...)` and shut down after, or joined at an address
(`auto`, `ray://head:10001`) and left running. A Ray session that is already initialised in the
process (a test's, a notebook's) is joined and left running as well.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from andon.dag.spec import Resources
from andon.errors import BadInput
from andon.workspace import disable_telemetry

log = logging.getLogger("andon.dag")


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished submission: its value, or the error that ended it."""

    key: str
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Worker(Protocol):
    """Runs submitted calls; `wait` returns at least one finished call while any is outstanding."""

    name: str

    def submit(self, key: str, fn: Callable[..., Any], resources: Resources, *args: Any) -> None: ...

    def wait(self) -> list[Completion]: ...

    def shutdown(self) -> None: ...


class SequentialWorker:
    """Runs each call in this process when waited for, in submission order; resources are not enforced."""

    name = "sequential"

    def __init__(self) -> None:
        self._queue: deque[tuple[str, Callable[..., Any], tuple[Any, ...]]] = deque()

    def submit(self, key: str, fn: Callable[..., Any], resources: Resources, *args: Any) -> None:
        self._queue.append((key, fn, args))

    def wait(self) -> list[Completion]:
        if not self._queue:
            return []
        key, fn, args = self._queue.popleft()
        try:
            return [Completion(key, value=fn(*args))]
        except Exception as exc:  # a failed node, reported by the executor; the others go on
            return [Completion(key, error=f"{type(exc).__name__}: {exc}")]

    def shutdown(self) -> None:
        self._queue.clear()


def _invoke(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def start_ray(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None,
              include_dashboard: bool = False) -> float:
    """Start a local Ray (address None) or join the cluster at `address`; returns the seconds it took.

    Shared by `andon dag run` and `andon tune`; Ray's logs go to stderr, never stdout.

    Raises:
        BadInput: Ray could not start or the address could not be joined, saying what to do.
    """
    import time

    import ray

    disable_telemetry()
    started = time.perf_counter()
    try:
        if address is None:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=include_dashboard,
                     log_to_driver=True, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=True, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"join Ray at ray.address={address}" if address else "start a local Ray"
        raise BadInput(f"could not {where}: {exc}. Start the cluster (`ray start --head`), fix ray.address "
                       f"(null starts a local Ray), or run with worker=sequential") from exc
    return time.perf_counter() - started


class RayWorker:
    """Runs each call as a Ray task asking for the node's resources.

    Args:
        address: None starts a local Ray (`ray.init(num_cpus=...)`) and shuts it down after; `auto` or
            `ray://host:port` joins a running cluster and leaves it running.
        num_cpus: CPUs of the local Ray (None: all of the machine's).
        num_gpus: GPUs of the local Ray (None: those Ray detects).
        include_dashboard: start Ray's dashboard with a local Ray.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
                 include_dashboard: bool = False) -> None:
        self.address = address or None
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.include_dashboard = include_dashboard
        self._owns = False
        self._remote: Any = None
        self._pending: dict[Any, str] = {}
        self._refused: list[Completion] = []
        self.init_s: float | None = None

    def _ensure(self) -> Any:
        import ray

        if self._remote is not None:
            return ray
        if not ray.is_initialized():
            self.init_s = start_ray(self.address, self.num_cpus, self.num_gpus, self.include_dashboard)
            self._owns = True
            log.info("ray: %s in %.1f s", "started locally" if self.address is None else f"joined {self.address}",
                     self.init_s)
        # Retrying a node is the rerun's job (it resumes from fingerprints); Ray must not retry silently.
        self._remote = ray.remote(max_retries=0)(_invoke)
        return ray

    def submit(self, key: str, fn: Callable[..., Any], resources: Resources, *args: Any) -> None:
        ray = self._ensure()
        refusal = _infeasible(ray, resources)
        if refusal:
            self._refused.append(Completion(key, error=refusal))
            return
        options = resources.ray_options()
        ref = self._remote.options(name=f"andon-dag:{key}", **options).remote(fn, *args)
        self._pending[ref] = key

    def wait(self) -> list[Completion]:
        if self._refused:
            refused, self._refused = self._refused, []
            return refused
        if not self._pending:
            return []
        ray = self._ensure()
        done, _ = ray.wait(list(self._pending), num_returns=1)
        out = []
        for ref in done:
            key = self._pending.pop(ref)
            try:
                out.append(Completion(key, value=ray.get(ref)))
            except Exception as exc:  # the node failed (RayTaskError wraps its exception) or its worker died
                cause = getattr(exc, "cause", None) or exc
                out.append(Completion(key, error=f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1]}"
                                      if str(cause).strip() else type(cause).__name__))
        return out

    def shutdown(self) -> None:
        if self._remote is None:
            return
        import ray

        for ref in list(self._pending):
            ray.cancel(ref, force=True)
        self._pending.clear()
        if self._owns:
            ray.shutdown()
        self._remote = None


def _infeasible(ray: Any, resources: Resources) -> str | None:
    """Why no alive Ray node could ever run this request (None when one can).

    Ray would otherwise queue an infeasible task forever: the line must stop and say so instead.
    """
    wanted = {"CPU": resources.num_cpus, "GPU": resources.num_gpus, **dict(resources.custom)}
    wanted = {k: v for k, v in wanted.items() if v > 0}
    offers = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    if any(all(offer.get(k, 0.0) >= v for k, v in wanted.items()) for offer in offers):
        return None
    shown = [", ".join(f"{k}={offer.get(k, 0.0):g}" for k in wanted) for offer in offers]
    return (f"no Ray node offers {', '.join(f'{k}={v:g}' for k, v in wanted.items())} (the nodes offer "
            f"{'; '.join(shown) or 'nothing'}): lower the node's resources or add a Ray node that offers them")


def check_worker(worker: Any) -> Worker:
    """The instantiated `worker` config, checked against the protocol."""
    if not isinstance(worker, Worker):
        raise BadInput(f"worker {type(worker).__name__} lacks submit/wait/shutdown: use worker=sequential or worker=ray")
    return worker
