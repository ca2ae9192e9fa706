"""The values file's `policy` section becomes the batch service's FairSharePolicy traits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traitlets import TraitError

from batch_service.app import BatchServiceApp
from batch_service.fair_share import FairSharePolicy
from hub_config.values import get, load_values


def test_every_policy_key_of_the_values_file_is_a_trait_with_help() -> None:
    keys = set(get(load_values(), "policy"))
    traits = FairSharePolicy.class_traits(config=True)
    assert keys == set(traits)
    assert all(len(trait.help) > 20 for trait in traits.values())


def test_the_service_reads_its_policy_from_the_settings_the_hub_writes(tmp_path: Path) -> None:
    policy = {
        **get(load_values(), "policy"),
        "half_life_seconds": 3600,
        "group_gpu_caps": {"lab-a": 2},
        "user_weights": {"ann": 2.5},
    }
    settings = {
        "BatchServiceApp": {
            "state_dir": str(tmp_path / "batch"),
            "capacity": {"a100": 4},
            "profiles": get(load_values(), "profiles"),
        },
        "FairSharePolicy": policy,
    }
    path = tmp_path / "service_config.json"
    path.write_text(json.dumps(settings))
    app = BatchServiceApp()
    app.initialize([f"--config={path}"])
    config = app.admission.config()
    assert config.half_life_seconds == 3600
    assert dict(config.group_gpu_caps) == {"lab-a": 2}
    assert dict(config.user_weights) == {"ann": 2.5}
    assert config.named_groups == {"lab-a"}


def test_a_weight_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(TraitError):
        FairSharePolicy(user_weights={"ann": "heavy"})
