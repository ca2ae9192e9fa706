"""The admission policy: a pure function deciding whose turn it is on scarce GPUs."""

from batch_service.policy.decide import decide
from batch_service.policy.model import (
    Allocation,
    Decision,
    Holder,
    PolicyConfig,
    Request,
    Usage,
    Wait,
)
from batch_service.policy.reasons import CODES, describe_wait, wait_words
from batch_service.policy.usage import charge, decay, settle

__all__ = [
    "CODES",
    "Allocation",
    "Decision",
    "Holder",
    "PolicyConfig",
    "Request",
    "Usage",
    "Wait",
    "charge",
    "decay",
    "decide",
    "describe_wait",
    "settle",
    "wait_words",
]
