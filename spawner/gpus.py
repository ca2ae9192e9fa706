"""GPU inventory and dedicated allocation on one machine.

The *inventory* lists the machine's GPUs (from NVML, or from the values file). The *pool*
hands each server dedicated GPUs by UUID: no two running servers share one, and a server's
GPUs come back when it stops or dies.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gpu:
    """One device."""

    uuid: str
    type: str
    index: int = 0
    # The device file (/dev/nvidia<minor>) the device barrier fences; None: not known.
    device: str | None = None


class GpuUnavailable(RuntimeError):
    """Not enough free GPUs of the requested type; the message is shown to the user."""


def _type_from_name(device_name: str, nvml_types: Mapping[str, str]) -> str:
    for fragment, gpu_type in nvml_types.items():
        if fragment.lower() in device_name.lower():
            return gpu_type
    return re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-")[:40] or "gpu"


def discover_nvml(nvml_types: Mapping[str, str]) -> list[Gpu]:
    """Ask the NVIDIA driver for the machine's GPUs; [] when there is no driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as e:  # no driver, no library: a CPU-only machine
        log.info("NVML unavailable (%s): no GPUs from the driver", e)
        return []
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            name = name.decode() if isinstance(name, bytes) else name
            uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
            try:
                device = f"/dev/nvidia{pynvml.nvmlDeviceGetMinorNumber(handle)}"
            except Exception:  # not every platform reports minor numbers
                device = None
            gpus.append(
                Gpu(
                    uuid=uuid,
                    type=_type_from_name(name, nvml_types),
                    index=index,
                    device=device,
                )
            )
        return gpus
    finally:
        pynvml.nvmlShutdown()


def load_inventory(
    source: str, devices: Iterable[Mapping], nvml_types: Mapping[str, str]
) -> list[Gpu]:
    """The GPU inventory the values file asks for (source: auto, nvml or list)."""
    listed = [
        Gpu(uuid=d["uuid"], type=d["type"], index=d.get("index", i), device=d.get("device"))
        for i, d in enumerate(devices)
    ]
    if source == "list" or (source == "auto" and listed):
        return listed
    return discover_nvml(nvml_types)


class GpuPool:
    """Dedicated GPUs per server, keyed by an owner string (user/server)."""

    def __init__(self, inventory: Iterable[Gpu]) -> None:
        self.inventory: list[Gpu] = list(inventory)
        self._owner_of: dict[str, str] = {}

    def free(self, gpu_type: str | None = None) -> list[Gpu]:
        """Free GPUs, of one type or any."""
        return [
            g
            for g in self.inventory
            if g.uuid not in self._owner_of and (gpu_type is None or g.type == gpu_type)
        ]

    def held_by(self, owner: str) -> list[str]:
        """UUIDs held by an owner."""
        return [uuid for uuid, who in self._owner_of.items() if who == owner]

    def check_exists(self, count: int, gpu_type: str | None) -> None:
        """Raise GpuUnavailable if this machine does not have count GPUs of the type at all."""
        of_type = [g for g in self.inventory if gpu_type is None or g.type == gpu_type]
        if len(of_type) < count:
            kind = f"GPU{'s' if count > 1 else ''}" + (f" of type {gpu_type}" if gpu_type else "")
            raise GpuUnavailable(
                f"this profile needs {count} {kind} but this machine has {len(of_type)}"
            )

    def check(self, count: int, gpu_type: str | None) -> list[Gpu]:
        """The GPUs an allocation would take now, or GpuUnavailable saying why not."""
        self.check_exists(count, gpu_type)
        of_type = [g for g in self.inventory if gpu_type is None or g.type == gpu_type]
        free = self.free(gpu_type)
        kind = f"GPU{'s' if count > 1 else ''}" + (f" of type {gpu_type}" if gpu_type else "")
        if len(free) < count:
            raise GpuUnavailable(
                f"this profile needs {count} {kind} but only {len(free)} of {len(of_type)} "
                "are free now; try again when a server stops"
            )
        return sorted(free, key=lambda g: g.index)[:count]

    def allocate(self, owner: str, count: int, gpu_type: str | None) -> list[str]:
        """Reserve count free GPUs of a type for owner, or raise GpuUnavailable."""
        if count <= 0:
            return []
        held = self.held_by(owner)
        if held:
            return held
        chosen = self.check(count, gpu_type)
        for gpu in chosen:
            self._owner_of[gpu.uuid] = owner
        return [g.uuid for g in chosen]

    def restore(self, owner: str, uuids: Iterable[str]) -> None:
        """Re-record an allocation found in saved state (after a hub restart)."""
        known = {g.uuid for g in self.inventory}
        for uuid in uuids:
            if uuid in known and self._owner_of.get(uuid, owner) == owner:
                self._owner_of[uuid] = owner

    def release(self, owner: str) -> list[str]:
        """Give an owner's GPUs back; return their UUIDs."""
        released = self.held_by(owner)
        for uuid in released:
            del self._owner_of[uuid]
        return released


def nvml_readings(uuids: Iterable[str]) -> dict[str, dict[str, float]]:
    """Utilisation (%) and memory (bytes) per GPU UUID from NVML; {} without a driver.

    Blocking (driver calls): run it in a thread from an event loop.
    """
    wanted = set(uuids)
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library: nothing to read
        return {}
    readings: dict[str, dict[str, float]] = {}
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
            if uuid not in wanted:
                continue
            try:
                rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:  # a device that reports neither (MIG, some vGPUs)
                continue
            readings[uuid] = {
                "utilization": float(rates.gpu),
                "memory_used": float(memory.used),
                "memory_total": float(memory.total),
            }
        return readings
    finally:
        pynvml.nvmlShutdown()
