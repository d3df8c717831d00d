"""Choosing the tf.distribute strategy of slim-train from its flags.

* `TF_CONFIG` with several workers, or `--worker_hosts` + `--task`:
  `MultiWorkerMirroredStrategy` (synchronous all-reduce across machines).
* `--num_clones=N`: `MirroredStrategy` over N GPUs, or N logical CPU devices
  with `--clone_on_cpu` (the batch size is per clone, as in the original).
* otherwise the default strategy (one device).
* `--num_ps_tasks>0`: refused with a message (parameter servers are not used).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
from typing import Any

import tensorflow as tf

from slimcli.errors import SlimError

__all__ = ["StrategyInfo", "make_strategy", "cluster_from_flags", "mirrored_strategy"]

log = logging.getLogger("slimcli.train")


@dataclasses.dataclass
class StrategyInfo:
    """The strategy and this process's role in it."""
    strategy: Any
    is_chief: bool = True
    task: int = 0
    num_workers: int = 1

    @property
    def num_replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)


def cluster_from_flags(worker_hosts: str | None, task: int) -> dict | None:
    """A TF_CONFIG dict from `--worker_hosts=h1:p1,h2:p2 --task=i` (None if no hosts)."""
    hosts = [h.strip() for h in (worker_hosts or "").split(",") if h.strip()]
    if not hosts:
        return None
    if not 0 <= task < len(hosts):
        raise SlimError(f"--task={task} is not an index of --worker_hosts ({len(hosts)} hosts); "
                        f"use 0..{len(hosts) - 1}.")
    return {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": task}}


def _tf_config() -> dict | None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise SlimError(f"TF_CONFIG is not valid JSON ({e}); expected e.g. "
                        f'{{"cluster": {{"worker": ["host:port", ...]}}, '
                        f'"task": {{"type": "worker", "index": 0}}}}.') from None


def _multi_worker(config: dict) -> StrategyInfo:
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    is_chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    log.info("MultiWorkerMirroredStrategy: %d workers, this is %s %d%s", workers, kind, index,
             " (chief)" if is_chief else "")
    return StrategyInfo(strategy, is_chief, index, workers)


# Each MirroredStrategy numbers its collective groups from 1 + its key base. Two
# strategies in one process with the same base share group/instance keys, and the
# collective executor then pairs an all-reduce of one with a cached instance of the
# other ("Shape mismatch in the collective instance ..."). Every strategy made here
# gets its own range of group keys.
_GROUP_KEYS_PER_STRATEGY = 10_000
_strategy_count = itertools.count(1)


def mirrored_strategy(devices: list[str]) -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy over `devices` whose collective keys are its own.

    Use it instead of `tf.distribute.MirroredStrategy(devices)` wherever a process
    may make more than one strategy (a notebook, train then eval, the tests).
    """
    cls = tf.distribute.MirroredStrategy
    previous = cls._collective_key_base
    cls._collective_key_base = next(_strategy_count) * _GROUP_KEYS_PER_STRATEGY
    try:
        return cls(devices)
    finally:
        cls._collective_key_base = previous


def _clone_devices(num_clones: int, clone_on_cpu: bool) -> list[str]:
    kind = "CPU" if clone_on_cpu else "GPU"
    devices = tf.config.list_logical_devices(kind)
    if clone_on_cpu and len(devices) < num_clones:
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_clones)
        except RuntimeError:
            raise SlimError(f"--num_clones={num_clones} --clone_on_cpu: TensorFlow was already "
                            f"started with {len(devices)} CPU device(s); start a fresh process."
                            ) from None
        devices = tf.config.list_logical_devices("CPU")
    if len(devices) < num_clones:
        raise SlimError(f"--num_clones={num_clones} needs {num_clones} GPUs, found "
                        f"{len(devices)}; use --num_clones={max(len(devices), 1)} or "
                        f"--clone_on_cpu.")
    return [d.name for d in devices[:num_clones]]


def make_strategy(num_clones: int = 1, clone_on_cpu: bool = False, num_ps_tasks: int = 0,
                  worker_hosts: str | None = None, task: int = 0) -> StrategyInfo:
    """The strategy for these flags; call it before any other TensorFlow work.

    Raises:
      SlimError: parameter servers asked for, bad clone count or cluster.
    """
    if num_ps_tasks > 0:
        raise SlimError(f"--num_ps_tasks={num_ps_tasks}: parameter-server training is not "
                        f"supported; slimcli trains synchronously with all-reduce. Use "
                        f"--num_clones for several GPUs and TF_CONFIG (or --worker_hosts/--task) "
                        f"for several machines, with --num_ps_tasks=0.")
    if num_clones < 1:
        raise SlimError(f"--num_clones must be at least 1; got {num_clones}.")
    from_flags = cluster_from_flags(worker_hosts, task)
    if from_flags is not None:
        os.environ["TF_CONFIG"] = json.dumps(from_flags)
    config = _tf_config()
    if config is not None:
        cluster = config.get("cluster", {})
        if len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1:
            return _multi_worker(config)
    return StrategyInfo(local_strategy(num_clones, clone_on_cpu))


def local_strategy(num_clones: int = 1, clone_on_cpu: bool = False) -> tf.distribute.Strategy:
    """This process's devices only (TF_CONFIG is not read): the default strategy, one
    device, or MirroredStrategy over `num_clones` GPUs (logical CPUs with `clone_on_cpu`).

    Raises:
      SlimError: fewer devices than `num_clones`.
    """
    if num_clones < 1:
        raise SlimError(f"--num_clones must be at least 1; got {num_clones}.")
    if num_clones == 1 and not clone_on_cpu:
        return tf.distribute.get_strategy()
    devices = _clone_devices(num_clones, clone_on_cpu)
    if len(devices) == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    log.info("MirroredStrategy over %s", ", ".join(devices))
    return mirrored_strategy(devices)
