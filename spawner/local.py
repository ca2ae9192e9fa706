"""LocalBatchSpawner: servers as processes on one machine, one system account per hub user.

Each server runs under its user's own account (created on first spawn, home mode 0700), with
dedicated GPUs (CUDA_VISIBLE_DEVICES = their UUIDs) and a memory limit on its process tree.
Started without root, isolation is off: every server runs as the invoking account.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Dict, Float, List, Unicode, default

from .accounts import Account, account_name, current_account, ensure_account
from .devices import DeviceBarrier, device_of
from .gpus import GpuPool, GpuUnavailable, load_inventory
from .limits import MemoryEnforcer
from .mixin import BatchSpawnerMixin, config_path_first
from .mounts import (
    DATA_ROOT,
    DatasetMount,
    LabVolume,
    enter_private_mounts,
    link_folder,
    prepare_host,
    readable_datasets,
)
from .profiles import ServerRequest, cpu_list

RUNNER_CONFIG = Path(__file__).resolve().parent.parent / "batch_service" / "runner" / "etc"
LAB_CONFIG = Path(__file__).resolve().parent.parent / "batch_service" / "lab" / "etc"


def isolation_enabled(setting: str) -> bool:
    """True when each user gets their own account: 'on', or 'auto' when running as root."""
    return setting == "on" or (setting == "auto" and os.geteuid() == 0)


class LocalBatchSpawner(BatchSpawnerMixin, LocalProcessSpawner):
    """Local processes with per-user accounts, dedicated GPUs and memory limits."""

    isolation = Unicode(
        "auto",
        config=True,
        help="""'on': each hub user runs as their own system account (needs root);
        'off': every server runs as the account batchhub runs as;
        'auto': on when batchhub runs as root.""",
    )

    gpu_return_timeout = Float(
        60,
        config=True,
        help="""Seconds a server the batch service admitted (a run, or a GPU server whose turn
        came) waits for its GPUs to come back from a server that is still stopping, before
        its start fails.""",
    )

    batch_stop_timeout = Float(
        3,
        config=True,
        help="""Seconds a batch server gets to stop after each signal (interrupt, then
        terminate) before it is killed: its run has ended or was cancelled, and its GPUs go
        to whoever waits once it is gone.""",
    )

    ready_check_interval = Float(
        0.05,
        config=True,
        help="""Seconds between checks that a starting server answers, before the hub is told
        where it is (the hub's own checks back off to seconds apart).""",
    )

    account_prefix = Unicode(
        "bh-",
        config=True,
        help="Prefix of the system account of a hub user (a hub user 'root' becomes bh-root).",
    )

    homes_dir = Unicode(
        config=True,
        help="Folder holding the users' home directories (each mode 0700).",
    )

    memory_enforcement = Unicode(
        "auto",
        config=True,
        help="'cgroup' (cgroup v2), 'rlimit' (per process), or 'auto' (cgroup when writable).",
    )

    gpu_source = Unicode(
        "auto", config=True, help="Where the GPU inventory comes from: auto, nvml or list."
    )

    gpu_devices = List(Dict(), config=True, help="GPUs to hand out (dicts with uuid, type, index).")

    nvml_types = Dict(
        config=True, help="Map from a substring of an NVML device name to a GPU type."
    )

    gpu_barrier = Unicode(
        "auto",
        config=True,
        help="""How a server is kept to its own GPUs even if its code unsets
        CUDA_VISIBLE_DEVICES: 'cgroup' (a cgroup v1 device cgroup per server), 'owner' (GPU
        device files owned by the account holding them; needs root and per-user accounts),
        'none', or 'auto' (the first of these that works on this machine).""",
    )

    files_dir = Unicode(
        config=True,
        help="""The batch service's file store; its dataset index says which datasets each
        user may read at /data/<name>.""",
    )

    lab_volumes = List(
        Dict(),
        config=True,
        help="""Lab storage (the values file's data.lab_volumes): dicts with name, groups,
        mount_path, host_path, read_only. Members of the groups get host_path at mount_path.""",
    )

    @default("files_dir")
    def _files_dir_default(self) -> str:
        state = os.environ.get("BATCHHUB_STATE_DIR", "state")
        return str(Path(state, "batch", "files").resolve())

    system_path = List(
        Unicode(),
        ["/usr/local/bin", "/usr/bin", "/bin"],
        config=True,
        help="""Folders of PATH after the server's Python (its bin first, so `python` and `pip`
        are the kernel's) and the account's ~/.local/bin (what `pip install --user` adds).
        Nothing of the hub's own PATH reaches a user's server.""",
    )

    @default("homes_dir")
    def _homes_dir_default(self) -> str:
        state = os.environ.get("BATCHHUB_STATE_DIR", "state")
        return str(Path(state, "home").resolve())

    @default("cmd")
    def _cmd_default(self) -> list[str]:
        return [sys.executable, "-m", "batch_service.singleuser"]

    # one pool per hub process: every server of every user draws on the same GPUs
    _pools: dict[tuple, GpuPool] = {}
    _enforcers: dict[str, MemoryEnforcer] = {}
    _barriers: dict[tuple, DeviceBarrier] = {}

    account: Account | None = None
    datasets: list[DatasetMount] = []
    labs: list[LabVolume] = []
    gpu_uuids: list[str] = []
    memory_note: str = ""
    _limit: tuple[Any, str] = (lambda: None, "")
    _fence: Any = staticmethod(lambda: None)

    @property
    def gpu_pool(self) -> GpuPool:
        """The hub-wide GPU pool for this inventory."""
        key = (self.gpu_source, repr(self.gpu_devices), repr(sorted(self.nvml_types.items())))
        if key not in self._pools:
            inventory = load_inventory(self.gpu_source, self.gpu_devices, self.nvml_types)
            self._pools[key] = GpuPool(inventory)
        return self._pools[key]

    @property
    def device_barrier(self) -> DeviceBarrier:
        """The hub-wide GPU device barrier for this inventory."""
        key = (self.gpu_barrier, self.isolation, repr(self.gpu_pool.inventory))
        if key not in self._barriers:
            devices = [device_of(g.uuid, g.device) for g in self.gpu_pool.inventory]
            barrier = DeviceBarrier(
                self.gpu_barrier,
                [d for d in devices if d is not None],
                isolation_enabled(self.isolation),
            )
            self.log.info("batchhub: %s", barrier.note)
            self._barriers[key] = barrier
        return self._barriers[key]

    @property
    def memory_enforcer(self) -> MemoryEnforcer:
        """The hub-wide memory limit mechanism."""
        if self.memory_enforcement not in self._enforcers:
            self._enforcers[self.memory_enforcement] = MemoryEnforcer(self.memory_enforcement)
        return self._enforcers[self.memory_enforcement]

    @property
    def owner_key(self) -> str:
        """Who holds GPUs and cgroups: one key per user and server."""
        return f"{self.user.name}/{self.name or ''}"

    @property
    def cgroup_key(self) -> str:
        """A cgroup directory name for this server."""
        return f"{self.user.id}-{self.name or 'default'}"

    def check_capacity(self, request: ServerRequest) -> None:
        """Refuse at once (HTTP 409) a GPU profile that cannot start: its GPUs do not exist,
        or, without the GPU line to wait in, they are not free now."""
        profile = request.profile
        if profile.cpus is not None and not set(profile.cpus) <= os.sched_getaffinity(0):
            have = cpu_list(os.sched_getaffinity(0))
            raise web.HTTPError(
                409,
                f"profile {profile.name!r} pins runs to CPUs {cpu_list(profile.cpus)}, but this "
                f"machine offers CPUs {have}: ask an admin to fix the profile",
            )
        if not profile.gpus or self.gpu_pool.held_by(self.owner_key):
            return
        try:
            if self.uses_gpu_line or request.is_batch:
                self.gpu_pool.check_exists(profile.gpus, profile.gpu_type)
            else:
                self.gpu_pool.check(profile.gpus, profile.gpu_type)
        except GpuUnavailable as e:
            raise web.HTTPError(409, f"profile {profile.name!r}: {e}") from None

    def resolve_account(self) -> Account:
        """The account this server runs as (created on first spawn when isolated)."""
        homes = Path(self.homes_dir)
        if isolation_enabled(self.isolation):
            name = account_name(self.user.name, self.account_prefix)
            try:
                return ensure_account(name, homes)
            except (subprocess.CalledProcessError, OSError) as e:
                # Said to the hub as the start's failure, so the job fails with it.
                raise web.HTTPError(
                    500, f"could not prepare the system account {name}: {e}"
                ) from None
        home = homes / account_name(self.user.name, "")
        home.mkdir(parents=True, exist_ok=True)
        return current_account(str(home))

    def make_preexec_fn(self, name: str) -> Any:
        """Join the memory limit and the GPU fence, then drop to the user's account."""
        account = self.account
        limit_step, _ = self._limit
        fence_step = self._fence
        isolated = isolation_enabled(self.isolation) and account is not None
        gids = os.getgrouplist(account.name, account.gid) if isolated else []
        # Readers get each dataset's group: its files are readable by that group only.
        gids += [d.gid for d in self.datasets if d.gid is not None and d.gid not in gids]
        datasets, labs = list(self.datasets), list(self.labs)
        request = self.server_request
        cpus = request.profile.cpus if request is not None else None

        def preexec() -> None:
            try:
                if cpus is not None:
                    # The server, its kernels and everything they start inherit the pinning.
                    os.sched_setaffinity(0, cpus)
                limit_step()
                fence_step()
                if isolated:
                    enter_private_mounts(datasets, labs)
                    os.setgid(account.gid)
                    os.setgroups(gids)
                    os.setuid(account.uid)
                os.chdir(account.home)
            except BaseException as e:
                # the child's stderr is the hub log: say why the server could not start
                os.write(2, f"batchhub: cannot start server as {account.name}: {e!r}\n".encode())
                raise

        return preexec

    def get_args(self) -> list[str]:
        """The parent's arguments; a root server (isolation off, run as root) must say so."""
        args = super().get_args()
        if not isolation_enabled(self.isolation) and os.geteuid() == 0:
            args.append("--allow-root")
        return args

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        """HOME, USER, SHELL and PATH of the account the server runs as."""
        account = self.account or self.resolve_account()
        env["USER"] = env["LOGNAME"] = account.name
        env["HOME"] = account.home
        env["SHELL"] = "/bin/bash"
        env["PATH"] = self.user_path(account)
        return env

    def user_path(self, account: Account) -> str:
        """The server's Python's bin, the account's ~/.local/bin, then the system's folders."""
        command = self.cmd[0] if self.cmd else "jupyterhub-singleuser"
        found = shutil.which(command) if not os.path.isabs(command) else command
        python_bin = str(Path(found).parent) if found else str(Path(sys.executable).parent)
        local_bin = str(Path(account.home, ".local", "bin"))
        return os.pathsep.join(dict.fromkeys([python_bin, local_bin, *self.system_path]))

    def get_env(self) -> dict[str, str]:
        """Batch variables, dedicated GPUs and the memory limit in force."""
        env = super().get_env()
        env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpu_uuids)
        env["BATCHHUB_GPUS"] = ",".join(self.gpu_uuids)
        if self.memory_note:
            env["BATCHHUB_MEMORY_LIMIT"] = self.memory_note
        env["BATCHHUB_GPU_BARRIER"] = self.device_barrier.mechanism
        env["BATCHHUB_DATA_DIR"] = self.data_dir
        request = self.server_request
        if request is not None and request.profile.cpus is not None:
            env["BATCHHUB_CPUS"] = cpu_list(request.profile.cpus)
        if env.get("BATCHHUB_JOB_ID"):
            # Enables the runner extension from the work tree, whatever pip installed; a batch
            # server also skips Jupytext's server extension (its start is on every run's clock).
            env["JUPYTER_CONFIG_PATH"] = config_path_first(str(RUNNER_CONFIG), env, os.pathsep)
        else:
            # JupyterLab's Jobs go to batchhub's queue (from the work tree, whatever pip installed).
            env["JUPYTER_CONFIG_PATH"] = config_path_first(str(LAB_CONFIG), env, os.pathsep)
        return env

    async def start(self) -> Any:
        """Create the account, take GPUs, set the memory limit, start the process."""
        request = self.server_request
        if request is None:  # restored spawner or direct start: validate now
            self.validate_user_options(self.user_options or {})
            request = self.server_request
        assert request is not None
        self.account = self.resolve_account()
        self.prepare_storage()
        profile = request.profile
        await self.take_turn()
        try:
            self.gpu_uuids = await self.allocate_gpus(request)
        except GpuUnavailable as e:
            await self.leave_turn()
            raise web.HTTPError(409, f"profile {profile.name!r}: {e}") from None
        try:
            self._limit = self.memory_enforcer.prepare(self.cgroup_key, profile.mem_limit)
            self.memory_note = self._limit[1]
            self._fence = self.device_barrier.prepare(
                self.cgroup_key, self.account.uid, self.account.gid, self.gpu_uuids
            )
            self.log.info(
                "Starting %s as account %s, GPUs [%s], %s; %s",
                self._log_name,
                self.account.name,
                ",".join(self.gpu_uuids),
                self.memory_note,
                self.device_barrier.note,
            )
            self.notebook_dir = self.notebook_dir or self.account.home
            address = await super().start()
            await self.until_answering(*address)
            return address
        except BaseException:
            self._release()
            await self.leave_turn()
            raise

    async def allocate_gpus(self, request: ServerRequest) -> list[str]:
        """The server's GPUs; a start the service admitted waits for them to come back.

        The service admits a run or a GPU-line turn once the hub no longer runs what held its
        GPUs, but a stopping server hands them back at the very end of its stop: such a start
        waits (up to gpu_return_timeout) instead of failing and losing its place.
        """
        profile = request.profile
        admitted = request.is_batch or self.uses_gpu_line
        deadline = time.monotonic() + (self.gpu_return_timeout if admitted else 0)
        while True:
            try:
                return self.gpu_pool.allocate(self.owner_key, profile.gpus, profile.gpu_type)
            except GpuUnavailable:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.2)

    async def until_answering(self, ip: str, port: int) -> None:
        """Return once the server answers HTTP or http_timeout passes; fail at once when its
        process ends first.

        The hub checks a started server with a growing back-off (up to seconds between
        checks); answering for the first check cuts that wait from every start. A process
        that died would otherwise be waited for until http_timeout.
        """
        url = f"http://{ip or '127.0.0.1'}:{port}{self.server.base_url}api"
        client = AsyncHTTPClient()
        deadline = time.monotonic() + self.http_timeout
        while time.monotonic() < deadline and self.proc is not None and self.proc.poll() is None:
            try:
                await client.fetch(url, request_timeout=5, follow_redirects=False)
                return
            except HTTPClientError as e:
                if e.code != 599:  # any HTTP answer: the server is up
                    return
            except OSError:
                pass  # not listening yet
            await asyncio.sleep(self.ready_check_interval)
        code = self.proc.poll() if self.proc is not None else None
        if code is not None:
            raise RuntimeError(
                f"the server's process ended (exit code {code}) before it answered; "
                "its output is in the hub's log"
            )

    @property
    def data_dir(self) -> str:
        """Where this server finds datasets: /data, or the link folder without root."""
        if isolation_enabled(self.isolation):
            return DATA_ROOT
        account = self.account or self.resolve_account()
        return str(Path(account.home) / ".batchhub" / "data")

    def prepare_storage(self) -> None:
        """Which datasets and lab volumes this server gets (read when it starts)."""
        groups = self.user_group_names()
        self.datasets = readable_datasets(self.files_dir, self.user.name, groups)
        labs = [LabVolume.from_dict(v) for v in self.lab_volumes]
        self.labs = [lab for lab in labs if lab.host_path and lab.for_groups(groups)]
        if isolation_enabled(self.isolation):
            try:
                prepare_host(self.labs)
            except ValueError as e:
                raise web.HTTPError(500, str(e)) from None
        else:
            link_folder(Path(self.data_dir), self.datasets)

    def _release(self) -> None:
        # The pool knows what this server held (its own list may be cleared already).
        self.device_barrier.cleanup(self.cgroup_key, self.gpu_pool.held_by(self.owner_key))
        released = self.gpu_pool.release(self.owner_key)
        if released:
            self.log.info("GPUs of %s back in the pool: %s", self._log_name, ", ".join(released))
        self.gpu_uuids = []
        self.memory_enforcer.cleanup(self.cgroup_key)

    async def poll(self) -> int | None:
        """None while running; when the process is gone, its GPUs go back."""
        status = await super().poll()
        if status is not None:
            self._release()
            await self.leave_turn()
        return status

    async def stop(self, now: bool = False) -> None:
        """Stop the process tree and give its GPUs back."""
        request = self.server_request
        if request is not None and request.is_batch:
            self.interrupt_timeout = self.term_timeout = int(max(1, self.batch_stop_timeout))
        await super().stop(now=now)
        self._release()
        await self.leave_turn()

    async def progress(self) -> Any:
        """The place in the GPU line while waiting, then what was chosen."""
        async for event in super().progress():
            yield event
        if self.account is not None:
            gpus = ", ".join(self.gpu_uuids) or "none"
            fence = f"; {self.device_barrier.note}" if self.gpu_pool.inventory else ""
            yield {
                "progress": 50,
                "message": f"Running as {self.account.name}; GPUs: {gpus}; "
                f"{self.memory_note}{fence}",
            }

    def get_state(self) -> dict[str, Any]:
        """pid (from the parent) plus GPUs and profile, to survive a hub restart."""
        state = super().get_state()
        if self.gpu_uuids:
            state["gpus"] = list(self.gpu_uuids)
        state.update(self.profile_state())
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Re-record this server's GPUs in the pool after a hub restart."""
        super().load_state(state)
        self.restore_profile_state(state)
        if state.get("gpus") and state.get("pid"):
            self.gpu_uuids = list(state["gpus"])
            self.gpu_pool.restore(self.owner_key, self.gpu_uuids)
            # A hub restart: the fence of a server that kept running is put back as it was.
            account = self.account or self.resolve_account()
            self.device_barrier.prepare(self.cgroup_key, account.uid, account.gid, self.gpu_uuids)

    def clear_state(self) -> None:
        """Forget the pid and GPUs."""
        super().clear_state()
        self.gpu_uuids = []
