"""Data parallelism with JAX's own sharding: a 1-D device mesh over the batch axis.

Training puts its inputs on a :class:`jax.sharding.Mesh` with one axis, ``"batch"``:

* the batch (the row indices each step trains on) is split over the mesh, ``P("batch")``;
* parameters, optimizer state and the dataset are replicated, ``P()``;
* the jitted step is the single-device step: XLA's partitioner splits its work by the input
  shardings and inserts the all-reduce that sums the gradients (and the metrics) over devices.

One device is the mesh of size 1, so single- and many-device training are the same code. Several
hosts join through :func:`initialize` (``jax.distributed.initialize``) before any JAX computation;
each process then holds the devices of its host and feeds its own slice of every batch.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

BATCH = "batch"


def initialize(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Joins a multi-process run (``jax.distributed.initialize``); call before any JAX computation.

    Args:
      coordinator: ``host:port`` of process 0's coordinator service.
      num_processes: how many processes take part (one per host, usually).
      process_id: this process's rank, ``0 <= process_id < num_processes``.

    With all three None, does nothing (single process). On TPU pods and SLURM/Open MPI clusters JAX
    can find all three itself: pass ``coordinator="auto"`` and None for the others.
    """
    if coordinator is None and num_processes is None and process_id is None:
        return
    if coordinator == "auto" and num_processes is None and process_id is None:
        jax.distributed.initialize()
        return
    if coordinator is None or num_processes is None or process_id is None:
        raise ValueError(
            "initialize: coordinator, num_processes and process_id go together, got "
            f"coordinator={coordinator!r}, num_processes={num_processes!r}, process_id={process_id!r}"
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"initialize: coordinator must be host:port, got {coordinator!r}")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(
            f"initialize: need num_processes >= 1 and 0 <= process_id < num_processes, "
            f"got num_processes={num_processes}, process_id={process_id}"
        )
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named ``"batch"`` over the first ``num_devices`` devices (default: all of them).

    In a multi-process run the devices are global (every host's), and ``num_devices`` must be all
    of them: a process cannot leave its own devices out of the step.
    """
    devices = jax.devices()
    if num_devices is None:
        num_devices = len(devices)
    if not isinstance(num_devices, int) or isinstance(num_devices, bool) or num_devices < 1:
        raise ValueError(f"make_mesh: num_devices must be an int >= 1, got {num_devices!r}")
    if num_devices > len(devices):
        raise ValueError(
            f"make_mesh: asked for {num_devices} devices but JAX sees {len(devices)} "
            f"({devices[0].platform}); on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N "
            "simulates N devices"
        )
    if jax.process_count() > 1 and num_devices != len(devices):
        raise ValueError(
            f"make_mesh: a {jax.process_count()}-process run must use all {len(devices)} devices, "
            f"got num_devices={num_devices}"
        )
    return Mesh(np.array(devices[:num_devices]), (BATCH,))


def sharding(mesh: Mesh, batch_axis: int | None = None) -> NamedSharding:
    """An array's axis ``batch_axis`` split over the mesh (0: one batch ``(B, ...)``; 1: several
    ``(steps, B, ...)``), or a full copy on every device (``None``)."""
    return NamedSharding(mesh, P() if batch_axis is None else P(*([None] * batch_axis), BATCH))


def check_divisible(mesh: Mesh, **sizes: int) -> None:
    """Refuses batch sizes the mesh cannot split evenly, naming each offending size."""
    n = mesh.size
    bad = {name: size for name, size in sizes.items() if size % n}
    if bad:
        listed = ", ".join(f"{name}={size}" for name, size in bad.items())
        raise ValueError(
            f"batches must divide evenly over the {n} devices of the mesh; {listed} do not "
            f"(choose sizes that are multiples of {n}, or use --devices)"
        )


def put(array: np.ndarray, mesh: Mesh, batch_axis: int | None = None) -> jax.Array:
    """A host array on the mesh, split along ``batch_axis`` or copied whole to every device
    (:func:`sharding`). Every process computes the same global ``array`` (e.g. the seeded row order, or the
    data set) and only the slices for its own devices are copied."""
    return jax.make_array_from_callback(array.shape, sharding(mesh, batch_axis), lambda index: array[index])


def is_main_process() -> bool:
    """Process 0 writes files (checkpoints, history, figures); the others only compute."""
    return jax.process_index() == 0
