"""Profiles and GPUs: hostile user_options are refused, GPUs are dedicated and come back."""

from __future__ import annotations

import pytest

from spawner.gpus import Gpu, GpuPool, GpuUnavailable
from spawner.profiles import ProfileError, choose_profile, load_profiles, profile_from_dict

PROFILES = load_profiles(
    [
        {"name": "cpu", "mem_limit": "1G"},
        {"name": "gpu-1", "gpus": 1, "gpu_type": "a100", "max_time_limit": 600},
        {"name": "staff", "gpus": 1, "groups": ["staff"]},
    ]
)


def test_default_is_the_first_profile() -> None:
    assert choose_profile({}, PROFILES, [], "").profile.name == "cpu"
    assert PROFILES[0].mem_limit == 1024**3


@pytest.mark.parametrize(
    ("options", "server", "message"),
    [
        ({"profile": "gpu-99"}, "", "unknown profile 'gpu-99'; choose one of: cpu, gpu-1"),
        ({"profile": "cpu", "gpus": -1}, "", "unknown server option 'gpus'"),
        ({"profile": "cpu", "gpus": 10**9}, "", "unknown server option 'gpus'"),
        ({"profile": "staff"}, "", "reserved for the groups staff"),
        ({"profile": 3}, "", "profile must be a name"),
        ("cpu", "", "must be a JSON object"),
        ({"profile": "cpu"}, "batch-abcdefghij", "reserved for batch jobs"),
        ({"batch": {"job_id": "../../etc"}}, "batch-x", "job_id must be"),
        ({"batch": {"job_id": "abcdefghij"}}, "batch-zzzzzzzzzz", "must be named batch-abcdefghij"),
        (
            {"profile": "gpu-1", "batch": {"job_id": "abcdefghij", "time_limit": 601}},
            "batch-abcdefghij",
            "between 1 and 600",
        ),
        (
            {"batch": {"job_id": "abcdefghij", "image": "evil"}},
            "batch-abcdefghij",
            "unknown batch option 'image'",
        ),
    ],
)
def test_hostile_options_are_refused_clearly(options: object, server: str, message: str) -> None:
    with pytest.raises(ProfileError) as raised:
        choose_profile(options, PROFILES, [], server)
    assert message in str(raised.value)


def test_group_member_may_use_a_group_profile() -> None:
    assert choose_profile({"profile": "staff"}, PROFILES, ["staff"], "").profile.gpus == 1


def test_batch_request_carries_its_job() -> None:
    request = choose_profile(
        {"profile": "gpu-1", "batch": {"job_id": "abcdefghij", "time_limit": 60}},
        PROFILES,
        [],
        "batch-abcdefghij",
    )
    assert (request.job_id, request.time_limit, request.is_batch) == ("abcdefghij", 60, True)


def test_duplicate_profile_names_are_refused() -> None:
    with pytest.raises(ProfileError, match="repeated: cpu"):
        load_profiles([{"name": "cpu"}, {"name": "cpu"}])


def test_gpus_are_dedicated_refused_when_gone_and_returned() -> None:
    pool = GpuPool([Gpu("GPU-a", "a100", 0), Gpu("GPU-b", "a100", 1), Gpu("GPU-c", "t4", 2)])
    first = pool.allocate("alice/", 1, "a100")
    second = pool.allocate("bob/", 1, "a100")
    assert first != second and set(first + second) == {"GPU-a", "GPU-b"}
    with pytest.raises(GpuUnavailable, match="only 0 of 2 are free"):
        pool.allocate("carol/", 1, "a100")
    with pytest.raises(GpuUnavailable, match="this machine has 1"):
        pool.allocate("carol/", 2, "t4")
    assert pool.release("alice/") == first
    assert pool.allocate("carol/", 1, "a100") == first


def test_restored_allocation_is_held_again() -> None:
    pool = GpuPool([Gpu("GPU-a", "a100", 0)])
    pool.restore("alice/", ["GPU-a", "GPU-unknown"])
    assert pool.free() == []
    assert pool.held_by("alice/") == ["GPU-a"]


def test_cpu_lists_of_exclusive_profiles_are_read_and_bad_ones_refused() -> None:
    from spawner.profiles import cpu_list, parse_cpus

    assert parse_cpus("0-3,6") == (0, 1, 2, 3, 6)
    assert parse_cpus([3, 1, 1]) == (1, 3)
    assert parse_cpus("all") is None and parse_cpus(None) is None
    assert cpu_list((0, 1, 2, 3, 6, 8, 9)) == "0-3,6,8-9"
    for bad in ("3-1", "0-99999", "1,,2", "x", [], [-1], [True], "0-" + "9" * 300, 7):
        with pytest.raises(ProfileError, match="cpus"):
            parse_cpus(bad, "exclusive")
    profile = profile_from_dict({"name": "perf", "exclusive": True, "cpus": "0-1"})
    assert profile.exclusive and profile.cpus == (0, 1) and profile.waits_for_exclusive
    assert profile.to_dict()["cpus"] == [0, 1]
