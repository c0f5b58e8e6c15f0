"""Where passages are cut and encoded: on a Ray cluster (``--ray``), for a build or
``odqa encode`` alike.

The driver reads the corpus itself, so every input format and every check of it is the one a
single-machine build has. It sends batches of documents to a pool of actors, each of which
loads the models once, cuts the documents into passages with the build's :class:`Cutter` and
runs each kind's :class:`Step` on their texts (its encoder, then the kind's own step where
it has one: ColBERT's compression with the codec the driver trained). Results come back in
the order sent, and the driver writes the index with the code a single-machine build uses
(collection, BM25, faiss, the inverted file), so the index is the same.

A worker that dies is restarted and its batch sent again (Ray's actor restarts and task
retries); an error in a worker (a bad model file, say) stops the build with that error.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from odqa.corpus import Document, Passage, indexable_text, kept_of
from odqa.encode.cutting import Cutter
from odqa.encode.encoders import Encoder
from odqa.errors import InputError, OdqaError
from odqa.extras import require

RESTARTS = 4
"""Times a worker is restarted (and its batch retried) before the build gives up."""
PROBE_SECONDS = 10.0
"""How long a cluster address has to accept a connection before the build gives up."""

Prepared = tuple[list[Passage], dict[str, Any]]
"""A batch's passages, and each kind's encoding of their texts by kind name."""


@dataclass(frozen=True)
class RaySettings:
    """Where chunking and encoding run on Ray.

    ``address``: ``auto`` (the cluster ``ray start`` made, or ``RAY_ADDRESS``), ``local`` (a
    cluster started for this build on this machine), or a cluster's address. ``workers``:
    encoding actors (default: as many as the cluster's CPUs, or GPUs, allow). Each holds
    ``cpus_per_worker`` CPUs (its torch threads) and ``gpus_per_worker`` GPUs and loads the
    models once; ``tasks_per_worker`` batches are queued to each so none waits for work.
    """

    address: str = "auto"
    workers: int | None = None
    cpus_per_worker: int = 1
    gpus_per_worker: float = 0.0
    tasks_per_worker: int = 2

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--ray-workers must be at least 1, got {self.workers}")
        if self.cpus_per_worker < 1:
            raise InputError(
                f"--ray-cpus-per-worker must be at least 1, got {self.cpus_per_worker}"
            )
        if not 0 <= self.gpus_per_worker <= 64:
            raise InputError(
                f"--ray-gpus-per-worker must be between 0 and 64, got {self.gpus_per_worker}"
            )
        if self.tasks_per_worker < 1:
            raise InputError(f"tasks_per_worker must be at least 1, got {self.tasks_per_worker}")


@dataclass(frozen=True)
class Step:
    """One kind's encoding of passage texts, wherever it runs: ``encoder``'s output, then
    ``then`` of it (a kind's own step, picklable) where there is one."""

    encoder: Encoder
    then: Callable[[Any], Any] | None = None

    def __call__(self, texts: list[str]) -> Any:
        encoded = self.encoder.encode(texts)
        return encoded if self.then is None else self.then(encoded)


def prepare_here(cutter: Cutter, steps: Mapping[str, Step], batch: list[Document]) -> Prepared:
    """A batch's passages and each step's encoding of their texts, in this process."""
    passages = cutter.cut(kept_of(batch))
    texts = [indexable_text(passage) for passage in passages]
    return passages, {name: step(texts) for name, step in steps.items()} if texts else {}


def import_ray() -> Any:
    """Ray, or an error naming the extra that installs it."""
    return require("ray", "ray", "--ray")


@dataclass(frozen=True)
class ClusterShape:
    """The cluster a build ran on, as its manifest records it."""

    address: str
    nodes: int
    cpus: float
    gpus: float
    workers: int
    cpus_per_worker: int
    gpus_per_worker: float

    def describe(self) -> str:
        return describe_shape(asdict(self))


def describe_shape(shape: dict[str, Any]) -> str:
    """A cluster shape (as :class:`ClusterShape` or the manifest's record of it) in words."""
    nodes = shape["nodes"]
    gpus = f" and {shape['gpus_per_worker']:g} GPU" if shape["gpus_per_worker"] else ""
    return (
        f"Ray cluster of {nodes} node{'s' * (nodes != 1)} ({shape['cpus']:g} CPUs, "
        f"{shape['gpus']:g} GPUs): {shape['workers']} workers of {shape['cpus_per_worker']} "
        f"CPU{gpus}"
    )


def probe(address: str) -> None:
    """Refuse, within :data:`PROBE_SECONDS`, a cluster address (``HOST:PORT`` or
    ``ray://HOST:PORT``) where nothing accepts a connection: Ray itself would wait for it
    without end."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise OdqaError(f"--ray takes auto, local, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
        return
    except TimeoutError:
        reason = f"no answer within {PROBE_SECONDS:g} s"
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
    raise OdqaError(
        f"no Ray cluster answers at {address!r} ({reason}); start one with `ray start --head`, "
        "check the address, or use --ray local"
    )


def connect(settings: RaySettings) -> ClusterShape:
    """Join the cluster ``settings.address`` names (or start a local one) and size the pool.

    An address where nothing answers is refused within :data:`PROBE_SECONDS`."""
    ray = import_ray()
    address = os.environ.get("RAY_ADDRESS") if settings.address == "auto" else None
    address = address or settings.address
    if address not in ("auto", "local"):
        probe(address)
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(include_dashboard=False, logging_level="WARNING")
            else:
                ray.init(address=address, logging_level="WARNING")
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise OdqaError(
                f"no Ray cluster at {settings.address!r} ({exc}); start one with "
                "`ray start --head`, set RAY_ADDRESS, or use --ray local"
            ) from exc
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    fitting = (
        int(gpus // settings.gpus_per_worker)
        if settings.gpus_per_worker
        else int(cpus // settings.cpus_per_worker)
    )
    fitting = min(fitting, int(cpus // settings.cpus_per_worker))
    workers = settings.workers or max(1, fitting)
    if workers > fitting:
        raise OdqaError(
            f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs: {workers} workers of "
            f"{settings.cpus_per_worker} CPU and {settings.gpus_per_worker:g} GPU do not fit "
            f"(at most {fitting}); lower --ray-workers or the resources per worker"
        )
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    address = ray.get_runtime_context().gcs_address
    return ClusterShape(
        address, nodes, cpus, gpus, workers, settings.cpus_per_worker, settings.gpus_per_worker
    )


class PassageWorker:
    """One Ray actor: cuts documents into passages and runs the kinds' steps on their texts."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.setup: tuple[Cutter, dict[str, Step]] | None = None

    def prepare(self, documents: list[Document], setup: list[Any]) -> Prepared:
        """Passages and encodings of ``documents``; ``setup`` holds (not resolved by Ray,
        so that a restarted worker fetches it again) the cutter and the steps."""
        if self.setup is None:
            self.setup = import_ray().get(setup[0])
            if self.setup[1]:
                import torch

                torch.set_num_threads(self.threads)
        return prepare_here(*self.setup, documents)

    def pid(self) -> int:
        return os.getpid()


class WorkerPool:
    """Actors fed batches (each to the one with least in hand), results taken back in the
    order sent; at most ``tasks_per_worker`` batches a worker in flight. A context manager:
    the actors are stopped on leaving."""

    NAME = "odqa-passage-worker"

    def __init__(
        self, shape: ClusterShape, settings: RaySettings, cutter: Cutter, steps: dict[str, Step]
    ) -> None:
        self.ray = import_ray()
        actor = self.ray.remote(PassageWorker)
        self.setup = [self.ray.put((cutter, steps))]  # sent once, read by each worker
        self.actors = [
            actor.options(
                name=f"{self.NAME}-{os.getpid()}-{number}",
                num_cpus=shape.cpus_per_worker,
                num_gpus=shape.gpus_per_worker,
                max_restarts=RESTARTS,
                max_task_retries=RESTARTS,
            ).remote(shape.cpus_per_worker)
            for number in range(shape.workers)
        ]
        self.capacity = settings.tasks_per_worker * len(self.actors)
        self.load = [0] * len(self.actors)
        self.pending: deque[tuple[int, Any, Any]] = deque()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)

    @property
    def full(self) -> bool:
        return len(self.pending) >= self.capacity

    def __len__(self) -> int:
        return len(self.pending)

    def submit(self, documents: list[Document], tag: Any) -> None:
        number = self.load.index(min(self.load))
        ref = self.actors[number].prepare.remote(documents, self.setup)
        self.pending.append((number, ref, tag))
        self.load[number] += 1

    def take(self) -> tuple[Any, Prepared]:
        """The oldest batch's tag and result (waiting for it)."""
        number, ref, tag = self.pending.popleft()
        self.load[number] -= 1
        errors = self.ray.exceptions
        try:
            return tag, self.ray.get(ref)
        except errors.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, OdqaError):
                raise cause from None
            raise OdqaError(f"a Ray worker failed: {cause or exc}") from exc
        except errors.RayActorError as exc:
            raise OdqaError(
                f"a Ray worker died and was not brought back ({RESTARTS} restarts at most): {exc}"
            ) from exc
        except errors.RayError as exc:  # an object lost, the cluster out of memory, ...
            raise OdqaError(f"the Ray cluster failed: {exc}") from exc


def prepared_batches(
    pool: WorkerPool, batches: Iterable[list[Document]]
) -> Iterator[tuple[list[Document], Prepared]]:
    """Each batch (as read, empty documents included) and its passages and encodings, in
    order."""
    for batch in batches:
        if pool.full:
            yield pool.take()
        pool.submit(kept_of(batch), batch)
    while len(pool):
        yield pool.take()


def shape_record(shape: ClusterShape) -> dict[str, Any]:
    """What the manifest's ``built_on`` says of a build on Ray."""
    return {"ray": asdict(shape)}
