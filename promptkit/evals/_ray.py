"""Running an eval's items on a Ray cluster (``promptkit eval SUITE --ray [ADDRESS]``, ``run_suite(ray=...)``).

The driver (this process) keeps everything that makes a run a run: the suite, the run log, the order of
models, the progress bar, the statistics. Ray only runs units (item x variant x repeat on one model):

- a local model (``local:``, a GGUF, a backend that says ``is_local``) gets ``replicas`` actors, each one
  process that loads the model once and answers one unit at a time;
- any other model (an API) runs each unit as a Ray task, at most the suite's ``concurrency`` (or the model
  alias' configured ``concurrency``) in flight across the whole cluster.

Each result comes back to the driver as it finishes and goes straight into the run log's journal, so a
``kill -9`` of the driver loses nothing that came back, and ``--resume`` redoes only what did not. A unit whose
worker died (a killed process, a lost node, a replica's crash) goes back to the queue and is run again by
another worker, up to ``max_item_retries`` times. Seeds are derived from (suite seed, item, repeat) as in a
local run, so the results, and the report, are the same as a local run's.

``ray`` is imported only here, inside functions: it is the ``ray`` extra, and ``import promptkit`` stays light.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptkit.backends import Backend
from promptkit.errors import EvalError, PromptkitError

if TYPE_CHECKING:
    from promptkit.evals._dataset import Item
    from promptkit.evals._eval_log import ItemResult
    from promptkit.evals._runlog import BatchCommitter

# The runner imports this module, not the other way round: the runner and its progress bar come in as
# arguments, and workers build theirs from the class the payload names.
_Runner = Any
_Progress = Any

__all__ = ["RayOptions", "RayStats", "RaySession", "INSTALL_HINT"]

INSTALL_HINT = "Ray is not installed: pip install 'promptkit[ray]'"
# Two units queued per replica: the next one is already there when the current one finishes.
_PER_REPLICA = 2
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


@dataclass
class RayStats:
    """What the last run on Ray did: where it ran, how long the cluster took to start, what was retried."""

    address: str | None = None
    started_cluster: bool = False
    cluster_start_s: float = 0.0
    nodes: int = 0
    replicas: dict[str, int] = field(default_factory=dict)  # per local model
    tasks: int = 0  # units run as tasks (API models)
    actor_calls: int = 0  # units run on replicas
    retried: list[str] = field(default_factory=list)  # "variant/model/item/repeat: why", one per retry

    def summary(self) -> str:
        where = "a new local Ray instance" if self.started_cluster else f"Ray at {self.address or 'auto'}"
        parts = [f"{where} ({self.nodes} node(s), started in {self.cluster_start_s:.1f} s)"]
        if self.replicas:
            parts.append(", ".join(f"{m}: {n} replica(s)" for m, n in self.replicas.items()))
        parts.append(f"{self.tasks} task(s), {self.actor_calls} replica call(s), {len(self.retried)} retried")
        return "; ".join(parts)


@dataclass
class RayOptions:
    """How to run on Ray. ``address``: None starts a local Ray instance (``ray.init()``; an ``ADDRESS`` or
    ``RAY_ADDRESS`` joins a cluster; ``"auto"`` the one started on this machine). ``replicas``: actors per
    local model (default: one per alive node). ``runtime_env`` and ``init_kwargs`` go to ``ray.init``.
    After a run, ``stats`` says what it did."""

    address: str | None = None
    replicas: int | None = None
    replica_cpus: float = 1.0
    task_cpus: float = 0.25
    max_item_retries: int = 3
    runtime_env: dict[str, Any] | None = None
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    stats: RayStats | None = field(default=None, compare=False)

    @classmethod
    def coerce(cls, value: RayOptions | str | bool) -> RayOptions:
        if isinstance(value, RayOptions):
            return value
        if value is True or value in ("", "local"):
            return cls()
        if isinstance(value, str):
            return cls(address=value)
        raise EvalError(f"ray= must be True, an address or RayOptions, got {value!r}", location="ray")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EvalError(INSTALL_HINT, location="--ray") from None
    return ray


# --------------------------------------------------------------------------------------- what travels


@dataclass
class _ShippedBackend:
    """A ready Backend made picklable: its attributes without its locks (a fresh lock on the other side)."""

    cls: type
    state: dict[str, Any]
    locks: list[str]

    def build(self) -> Backend:
        backend = self.cls.__new__(self.cls)
        backend.__dict__.update(self.state)
        for name in self.locks:
            setattr(backend, name, threading.Lock())
        return backend  # type: ignore[no-any-return]


def _ship_backend(name: str, backend: Backend) -> _ShippedBackend | Backend:
    import ray.cloudpickle as cloudpickle

    shipped: _ShippedBackend | Backend = backend
    if hasattr(backend, "__dict__"):
        state = dict(vars(backend))
        locks = [k for k, v in state.items() if isinstance(v, _LOCK_TYPES)]
        for key in locks:
            del state[key]
        shipped = _ShippedBackend(type(backend), state, locks)
    try:
        cloudpickle.dumps(shipped)
    except Exception as exc:
        raise EvalError(
            f"the backend of model {name!r} ({type(backend).__name__}) cannot be sent to Ray workers: {exc}; "
            "name the model by a model string (an alias, local:..., litellm:...) instead",
            location=f"backends[{name!r}]",
        ) from None
    return shipped


def _registered_backends() -> dict[str, Any]:
    """Schemes registered at run time with ``register_backend`` (entry points are found by workers
    themselves), the picklable ones, so that ``plug:x`` means on a worker what it means here."""
    import ray.cloudpickle as cloudpickle

    from promptkit.backends import _registry

    out = {}
    for scheme, factory in _registry.BACKENDS.registered().items():
        try:
            cloudpickle.dumps(factory)
        except Exception:
            continue  # a worker that needs it says which scheme is unknown
        out[scheme] = factory
    return out


@dataclass
class _Payload:
    """Everything a worker needs to build the run's runner: put in the object store once per model."""

    token: str
    runner_cls: type
    suite: Any
    backends: dict[str, Any]
    registered: dict[str, Any]
    cache: bool
    ledger: bool
    run_id: str
    cwd: str
    env: dict[str, str]


@dataclass
class _Pending:
    unit: tuple[int, int, int]  # (item index, variant index, repeat)
    tries: int = 0
    avoid: Any = None  # the replica it last died on


# --------------------------------------------------------------------------------------- the worker side


class _WorkerState:
    """One process's runner for one run: built once, reused by every unit this process runs."""

    def __init__(self, payload: _Payload) -> None:
        from promptkit.backends import register_backend

        for key, value in payload.env.items():
            os.environ[key] = value
        if Path(payload.cwd).is_dir():  # a local cluster or a shared file system: the driver's project folder
            os.chdir(payload.cwd)
        for scheme, factory in payload.registered.items():
            register_backend(scheme, factory)
        backends = {
            name: b.build() if isinstance(b, _ShippedBackend) else b for name, b in payload.backends.items()
        }
        self.runner = payload.runner_cls(
            payload.suite,
            backends=backends,
            cache=payload.cache,
            ledger=payload.ledger,
            run_log=None,
            run_id=payload.run_id,
            progress=False,
        )
        self.items: list[Item] = payload.suite.items()
        self.routers: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()  # one loop for the process: API clients keep their connections

    def run(self, model: str, unit: tuple[int, int, int]) -> ItemResult:
        router = self.routers.get(model)
        if router is None:
            router = self.routers[model] = self.runner.router_for(model)
        item_index, variant_index, repeat = unit
        work = self.runner.unit(self.items[item_index], variant_index, repeat)
        result: ItemResult = self.loop.run_until_complete(self.runner.run_unit(work, model, router))
        return result


_states: dict[str, _WorkerState] = {}


def _state(token: str, box: list[Any]) -> _WorkerState:
    state = _states.get(token)
    if state is None:
        payload = box[0]
        if not isinstance(payload, _Payload):
            payload = _ray().get(payload)  # a reference in a list: Ray fetches it only here, once per process
        _states.clear()  # one run at a time per process: drop an earlier run's models
        state = _states[token] = _WorkerState(payload)
    return state


def _run_task(token: str, box: list[Any], model: str, unit: tuple[int, int, int]) -> ItemResult:
    return _state(token, box).run(model, unit)


class _Replica:
    """One replica of a local model: a process that loads the model once and runs units one at a time."""

    def __init__(self, token: str, box: list[Any], model: str) -> None:
        self.state = _state(token, box)
        self.model = model

    def run(self, unit: tuple[int, int, int]) -> ItemResult:
        return self.state.run(self.model, unit)

    def pid(self) -> int:
        return os.getpid()


_remote: dict[str, Any] = {}


def _remotes() -> tuple[Any, Any]:
    if not _remote:
        ray = _ray()
        _remote["task"] = ray.remote(_run_task)
        _remote["replica"] = ray.remote(_Replica)
    return _remote["task"], _remote["replica"]


# --------------------------------------------------------------------------------------- the driver side


def _is_local_target(target: Any, config: Any) -> bool:
    if isinstance(target, Backend) or not isinstance(target, str):
        return bool(getattr(target, "is_local", False))
    from promptkit.backends import parse_model

    try:
        scheme, _ = parse_model(target, config)
    except PromptkitError:
        return False  # the worker reports an unknown model, naming it
    return scheme == "local"


class RaySession:
    """A connection to Ray for one eval run: started (or joined) once, closed at the end of the run."""

    def __init__(self, options: RayOptions, backends: Mapping[str, Backend], cache: Any, ledger: Any) -> None:
        self.options = options
        self.stats = options.stats = RayStats(address=options.address)
        self.backends = dict(backends)
        self.cache = cache
        self.ledger = ledger
        self._owned = False

    @classmethod
    def start(
        cls,
        value: RayOptions | str | bool,
        *,
        backends: Mapping[str, Backend],
        cache: Any,
        ledger: Any,
        progress: bool = True,
    ) -> RaySession:
        options = RayOptions.coerce(value)
        if options.replicas is not None and options.replicas < 1:
            raise EvalError(f"replicas must be at least 1, got {options.replicas}", location="ray.replicas")
        if not (cache is None or isinstance(cache, bool)) or not (ledger is None or isinstance(ledger, bool)):
            raise EvalError(
                "on Ray, cache= and ledger= must be True, False or None: each worker opens its own",
                location="ray",
            )
        session = cls(options, backends, cache, ledger)
        session._connect(progress)
        return session

    def _connect(self, progress: bool) -> None:
        ray = _ray()
        started = time.perf_counter()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False}
            address = self.options.address or os.environ.get("RAY_ADDRESS") or None
            if address is None:
                # A new local instance: no dashboard (seconds of start-up, a web server), reachable on this
                # machine only, so it needs no routable address.
                kwargs.update(
                    include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.ERROR
                )
            if self.options.runtime_env is not None:
                kwargs["runtime_env"] = self.options.runtime_env
            kwargs.update(self.options.init_kwargs)
            if progress:  # seconds of silence otherwise: a new instance starts its own processes
                where = f"joining Ray at {address}" if address else "starting a local Ray instance"
                print(f"ray: {where}...", file=sys.stderr, flush=True)
            try:
                context = ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise EvalError(
                    f"cannot start or join Ray: {exc}", location=f"--ray {address or ''}"
                ) from None
            self._owned = True
            self.stats.started_cluster = address is None
            self.stats.address = getattr(context, "address_info", {}).get("gcs_address", address)
        else:
            with contextlib.suppress(Exception):  # for the summary only; a Ray Client connection has none
                self.stats.address = ray.get_runtime_context().gcs_address
        self.stats.cluster_start_s = time.perf_counter() - started
        self.stats.nodes = sum(1 for node in ray.nodes() if node.get("Alive"))

    def close(self) -> None:
        if self._owned:
            self._owned = False
            _ray().shutdown()

    # -- one model --------------------------------------------------------------------------------------

    def _payload(self, runner: _Runner, model: str) -> Any:
        import copy

        from promptkit.config import STATE_ENV, TEMPLATE_PATH_ENV

        suite = copy.copy(runner.suite)
        suite._templates = {}  # Template objects hold compiled Jinja: workers load their own
        # Every ready backend travels: a judge scorer may use another model of the map.
        backends = {name: _ship_backend(name, b) for name, b in self.backends.items()}
        cache = self.cache if self.cache is not None else runner.spec.cache
        payload = _Payload(
            token=f"{runner.run_id}:{model}:{os.getpid()}:{time.monotonic_ns()}",
            runner_cls=type(runner),
            suite=suite,
            backends=backends,
            registered=_registered_backends(),
            cache=bool(cache),
            ledger=bool(self.ledger),
            run_id=runner.run_id,
            cwd=os.getcwd(),
            env={k: os.environ[k] for k in (STATE_ENV, TEMPLATE_PATH_ENV) if k in os.environ},
        )
        return payload

    def _is_local(self, runner: _Runner, model: str) -> bool:
        if runner.spec.router is not None:
            router = runner.router_for(model)
            return any(
                d.local if d.local is not None else _is_local_target(d.model, runner.config)
                for tier in router.tiers
                for d in tier.deployments
            )
        return _is_local_target(self.backends.get(model, model), runner.config)

    def _task_limit(self, runner: _Runner, model: str) -> int:
        alias = runner.config.raw.get("models", {}).get(model)
        if (
            runner.spec.router is None
            and isinstance(alias, dict)
            and isinstance(alias.get("concurrency"), int)
        ):
            return max(1, alias["concurrency"])  # a provider's rate limit wins, as in a local run
        return runner.spec.concurrency

    async def run_model(
        self,
        runner: _Runner,
        items: Sequence[Item],
        model: str,
        done: set[tuple[str, str, str, int]],
        committer: BatchCommitter,
        bar: _Progress,
    ) -> None:
        ray = _ray()
        index = {item.id: i for i, item in enumerate(items)}
        variants = {v.spec.name: i for i, v in enumerate(runner.variants)}
        queue = deque(
            _Pending((index[u.item.id], variants[u.variant.spec.name], u.repeat))
            for u in runner.units(items, model, done)
        )
        if not queue:
            return
        payload = self._payload(runner, model)
        box: list[Any] = []
        task_fn, replica_cls = _remotes()
        local = self._is_local(runner, model)
        replicas: list[Any] = []
        failures: dict[Any, int] = {}
        if local:
            count = self.options.replicas or max(1, self.stats.nodes)
            count = min(count, len(queue))
            replicas = [
                replica_cls.options(
                    num_cpus=self.options.replica_cpus,
                    max_restarts=self.options.max_item_retries,
                    max_task_retries=0,
                    scheduling_strategy="SPREAD",
                ).remote(payload.token, [payload], model)  # by value: a restart rebuilds from its own copy
                for _ in range(count)
            ]
            self.stats.replicas[model] = count
            slots = {r: 0 for r in replicas}
            describe = f"{count} replica(s)"
        else:
            box.append(ray.put(payload))  # once in the object store; each worker process fetches it once
            limit = self._task_limit(runner, model)
            describe = f"tasks, {limit} in flight"
        bar.describe(f"{runner.suite.name} · {model} · ray: {describe}")
        inflight: dict[asyncio.Future[Any], tuple[_Pending, Any, Any]] = {}

        def submit(pending: _Pending, replica: Any) -> None:
            if replica is None:
                ref = task_fn.options(num_cpus=self.options.task_cpus, max_retries=0).remote(
                    payload.token, box, model, pending.unit
                )
                self.stats.tasks += 1
            else:
                ref = replica.run.remote(pending.unit)
                slots[replica] += 1
                self.stats.actor_calls += 1
            inflight[asyncio.wrap_future(ref.future())] = (pending, replica, ref)

        def fill() -> None:
            if not local:
                while queue and len(inflight) < limit:
                    submit(queue.popleft(), None)
                return
            for replica in list(slots):
                while queue and slots[replica] < _PER_REPLICA:
                    # A unit that died on this replica goes elsewhere when another replica is alive.
                    pick = next((p for p in queue if p.avoid is not replica or len(slots) == 1), None)
                    if pick is None:
                        break
                    queue.remove(pick)
                    submit(pick, replica)

        try:
            fill()
            while inflight:
                finished, _ = await asyncio.wait(list(inflight), return_when=asyncio.FIRST_COMPLETED)
                for future in finished:
                    pending, replica, _ = inflight.pop(future)
                    if replica is not None and replica in slots:
                        slots[replica] -= 1
                    try:
                        result = future.result()
                    except ray.exceptions.RayTaskError as exc:
                        raise _task_error(exc, items[pending.unit[0]], model) from None
                    except ray.exceptions.RayError as exc:
                        self._retry(pending, replica, exc, runner, items, model, queue, bar)
                        if replica is not None:
                            failures[replica] = failures.get(replica, 0) + 1
                            # Every unit queued on it fails when it dies: that many failures per restart.
                            if failures[replica] > (self.options.max_item_retries + 1) * _PER_REPLICA:
                                slots.pop(replica, None)
                                if not slots:
                                    raise EvalError(
                                        f"every Ray replica of model {model!r} died",
                                        location=f"model {model}",
                                    ) from None
                        continue
                    committer.put(result)  # journaled (durable) before the next result is awaited
                    runner.cost += result.cost_usd
                    bar.advance(runner.cost)
                fill()
            if queue:  # cannot happen: fill() always places work when nothing is in flight
                raise EvalError(f"{len(queue)} unit(s) of model {model!r} were never sent", location=model)
        except BaseException:
            # Ctrl-C or a failed unit: what is still running on the cluster is not waited for.
            for future, (_, _, ref) in inflight.items():
                future.cancel()
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            raise
        finally:
            _stop(ray, replicas)

    def _retry(
        self,
        pending: _Pending,
        replica: Any,
        exc: BaseException,
        runner: _Runner,
        items: Sequence[Item],
        model: str,
        queue: deque[_Pending],
        bar: _Progress,
    ) -> None:
        item = items[pending.unit[0]]
        variant = runner.variants[pending.unit[1]].spec.name
        key = f"{variant}/{model}/{item.id}/{pending.unit[2]}"
        why = type(exc).__name__
        pending.tries += 1
        if pending.tries > self.options.max_item_retries:
            raise EvalError(
                f"item {item.id!r} (variant {variant!r}, model {model!r}, repeat {pending.unit[2]}) lost its "
                f"Ray worker {pending.tries} times; last: {why}: {str(exc).splitlines()[0] if str(exc) else ''}",
                location=item.location,
            ) from None
        pending.avoid = replica
        queue.appendleft(pending)
        self.stats.retried.append(f"{key}: {why}")
        bar.note(f"ray: {key} runs again: its worker died ({why})")


def _stop(ray: Any, replicas: list[Any], wait_s: float = 10.0) -> None:
    """End the replicas before the next model loads: gracefully (their cache and ledger rows are written at
    exit), then by force for any that does not stop in time."""
    if not replicas:
        return
    exits = [replica.__ray_terminate__.remote() for replica in replicas]
    with contextlib.suppress(Exception):
        ray.wait(exits, num_returns=len(exits), timeout=wait_s)
    for replica in replicas:
        with contextlib.suppress(Exception):
            ray.kill(replica, no_restart=True)


def _task_error(exc: Any, item: Item, model: str) -> BaseException:
    """The error a unit raised on a worker, as the local run would have raised it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, PromptkitError):
        return cause
    text = str(cause if cause is not None else exc).strip().splitlines()
    return EvalError(
        f"item {item.id!r} on model {model!r} failed on a Ray worker: {text[-1] if text else type(exc).__name__}",
        location=item.location,
    )
