"""FairSharePolicy: the fair-share settings as traitlets (the values file's `policy` section).

The hub config writes the section into the service's JSON settings under `FairSharePolicy`;
`to_policy()` hands the pure policy (batch_service.policy) its frozen settings.
"""

from __future__ import annotations

from traitlets import Bool, Dict, Float, Integer
from traitlets.config import Configurable

from batch_service.policy import PolicyConfig


class FairSharePolicy(Configurable):
    """Who goes next for GPUs: decayed usage, weights, caps, reservations, live windows."""

    half_life_seconds = Float(
        7 * 86400.0,
        help="""Usage halves every this many seconds: yesterday's GPU time counts half as much
        after one half-life, so a busy week is forgiven, not forgotten at once.""",
    ).tag(config=True)
    grace_period_seconds = Float(
        600.0,
        help="""When others wait for a GPU type, live kernels of finished runs on it end this
        many seconds later (their owners are told); otherwise they keep their full window.""",
    ).tag(config=True)
    max_wait_seconds = Float(
        4 * 3600.0,
        help="""After waiting this long, a request's size no longer counts against it, and a
        request bigger than others waiting gets GPUs reserved (its wait is bounded).""",
    ).tag(config=True)
    user_gpu_cap = Integer(
        None, allow_none=True, help="Most GPUs one user may hold at once (None: no cap)."
    ).tag(config=True)
    group_gpu_caps = Dict(
        value_trait=Integer(),
        help="""Most GPUs a hub group may hold at once, by group name. A group named here or
        in group_weights takes turns as one.""",
    ).tag(config=True)
    user_weights = Dict(
        value_trait=Float(),
        help="Share weight by user name (default 1; 2 means twice the share).",
    ).tag(config=True)
    group_weights = Dict(
        value_trait=Float(),
        help="""Share weight by hub group name (default 1). Admins change weights at run time
        on the Batch page; theirs win over these.""",
    ).tag(config=True)
    backfill = Bool(
        True,
        help="""Start smaller requests on GPUs the first in line cannot use yet (never delaying
        a reservation). False: strict order per GPU type.""",
    ).tag(config=True)
    backfill_depth = Integer(
        1000,
        min=1,
        help="""At most this many requests that cannot start are looked at in one decision
        (Slurm's bf_max_job_test): with a very long line, a decision stays fast; requests
        further back keep their places and are looked at as the line moves.""",
    ).tag(config=True)

    machines = Integer(
        1,
        min=1,
        help="""Machines that share the capacity, for exclusive profiles: an exclusive run
        takes one whole. 1 on one machine; on Kubernetes the nodes of the exclusive pool.""",
    ).tag(config=True)

    exclusive_pool = Bool(
        False,
        help="""True: those machines run exclusive runs only (on Kubernetes, a pool of nodes
        of their own): other work neither holds them nor waits for them.""",
    ).tag(config=True)

    def to_policy(self) -> PolicyConfig:
        """The frozen settings the pure policy reads."""
        return PolicyConfig(
            half_life_seconds=self.half_life_seconds,
            grace_period_seconds=self.grace_period_seconds,
            max_wait_seconds=self.max_wait_seconds,
            user_gpu_cap=self.user_gpu_cap,
            group_gpu_caps=dict(self.group_gpu_caps),
            user_weights=dict(self.user_weights),
            group_weights=dict(self.group_weights),
            backfill=self.backfill,
            backfill_depth=self.backfill_depth,
            machines=self.machines,
            exclusive_pool=self.exclusive_pool,
        )
