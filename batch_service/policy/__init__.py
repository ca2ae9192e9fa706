"""The admission policy: a pure function deciding whose turn it is on scarce GPUs."""

from batch_service.policy.decide import decide, describe_wait
from batch_service.policy.model import Allocation, Decision, PolicyConfig, Request, Usage
from batch_service.policy.usage import charge, decay, settle

__all__ = [
    "Allocation",
    "Decision",
    "PolicyConfig",
    "Request",
    "Usage",
    "charge",
    "decay",
    "decide",
    "describe_wait",
    "settle",
]
