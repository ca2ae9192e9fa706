"""batchhub's ONE hub configuration, driven by a values file.

The values file (hub_config/values.yaml, or the file named by $BATCHHUB_VALUES) is validated
against hub_config/values.schema.yaml, the same schema the Helm chart ships; an unknown or
mistyped key stops start-up with a message naming it.
"""

# ruff: noqa: F821  (`c` and `get_config` are provided by JupyterHub when it loads this file)

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jupyterhub.app import JupyterHub  # noqa: E402

from hub_config.logs import quiet_routine_polls  # noqa: E402
from hub_config.ports import resolve_ports, write_endpoints  # noqa: E402
from hub_config.shutdown import stop_cleanly_during_startup, stop_once  # noqa: E402
from hub_config.startup import summary  # noqa: E402
from hub_config.values import ValuesError, get, load_values, parse_bytes  # noqa: E402

try:
    values = load_values()
except ValuesError as e:
    print(f"batchhub cannot start: {e}", file=sys.stderr)
    sys.exit(2)

c = get_config()  # noqa: F821
# Ctrl-C before the hub has started stops it (and what it started) at once; later, one
# clean shutdown however often it is pressed.
stop_cleanly_during_startup()
if JupyterHub.initialized():
    stop_once(JupyterHub.instance())
state_dir = Path(os.environ.get("BATCHHUB_STATE_DIR", ROOT / "state")).resolve()
os.environ["BATCHHUB_STATE_DIR"] = str(state_dir)
hub_state = state_dir / "hub"
batch_state = state_dir / "batch"
for folder, mode in (
    (state_dir, 0o711),
    (hub_state, 0o700),
    (batch_state, 0o700),
    (state_dir / "home", 0o711),
):
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, mode)

# --- hub and proxy ---------------------------------------------------------------------
# Ports left null follow from bind_url's (or are free-picked): a second batchhub on this
# machine needs only another bind_url. Resolved once, written back for the code below.
ports = resolve_ports(
    get(values, "hub.bind_url"),
    {
        "hub": get(values, "hub.hub_port"),
        "proxy_api": get(values, "hub.proxy_api_port"),
        "batch": get(values, "batch.port"),
    },
    {"hub": get(values, "hub.hub_ip"), "proxy_api": "127.0.0.1", "batch": get(values, "batch.ip")},
    kubernetes=get(values, "spawner.kind") == "kubernetes",
)
values["hub"]["hub_port"], values["hub"]["proxy_api_port"] = ports.hub, ports.proxy_api
values["batch"]["port"] = ports.batch
c.JupyterHub.bind_url = get(values, "hub.bind_url")
c.JupyterHub.hub_ip = get(values, "hub.hub_ip")
c.JupyterHub.hub_port = ports.hub
c.JupyterHub.db_url = get(values, "hub.db_url") or f"sqlite:///{hub_state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(hub_state / "jupyterhub_cookie_secret")
c.JupyterHub.log_level = get(values, "hub.log_level")
c.JupyterHub.concurrent_spawn_limit = get(values, "hub.concurrent_spawn_limit")
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{ports.proxy_api}"
c.ConfigurableHTTPProxy.pid_file = str(hub_state / "proxy.pid")
proxy_bin = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
# The hub adds its routes only once its services answer: until then the proxy would answer 404
# to everyone (the login page too). A default target sends what has no route yet to the hub.
hub_listens_on = get(values, "hub.hub_ip")
hub_reached_at = "127.0.0.1" if hub_listens_on in ("", "0.0.0.0", "::") else hub_listens_on
proxy_default = f"--default-target=http://{hub_reached_at}:{ports.hub}"
c.ConfigurableHTTPProxy.command = [
    str(proxy_bin) if proxy_bin.exists() else "configurable-http-proxy",
    proxy_default,
]
c.JupyterHub.template_paths = [str(HERE / "templates")]
# The batch service's routine reads of the hub API are logged at DEBUG, not INFO.
quiet_routine_polls()
c.JupyterHub.load_groups = {
    name: {"users": members} for name, members in get(values, "hub.extra_groups", {}).items()
}

# --- login ------------------------------------------------------------------------------
admin_users = set(get(values, "hub.admin_users", []))
c.Authenticator.admin_users = admin_users
if get(values, "auth.type") == "oauth":
    from hub_config.oauth import configure_oauth

    configure_oauth(c, values)
else:
    import nativeauthenticator

    from hub_config.native_auth import BatchhubNativeAuthenticator

    c.JupyterHub.authenticator_class = BatchhubNativeAuthenticator
    c.JupyterHub.template_paths.append(str(Path(nativeauthenticator.__file__).parent / "templates"))
    native = get(values, "auth.native", {})
    c.BatchhubNativeAuthenticator.minimum_password_length = native["minimum_password_length"]
    c.BatchhubNativeAuthenticator.allowed_failed_logins = native["allowed_failed_logins"]
    c.BatchhubNativeAuthenticator.seconds_before_next_try = native["seconds_before_next_try"]
    c.BatchhubNativeAuthenticator.open_signup = native["open_signup"]
    c.BatchhubNativeAuthenticator.check_common_password = True
    c.BatchhubNativeAuthenticator.enable_signup = True
    # sign-up approval is the gate; every approved user may log in
    c.Authenticator.allow_all = True

# --- spawner ----------------------------------------------------------------------------
from spawner.credentials import load_or_create_key  # noqa: E402
from spawner.gpus import load_inventory  # noqa: E402
from spawner.local import isolation_enabled  # noqa: E402
from spawner.profiles import load_profiles  # noqa: E402

profiles = load_profiles(get(values, "profiles"))
profile_dicts = [p.to_dict() for p in profiles]
spawner_kind = get(values, "spawner.kind")
batch_port = ports.batch
batch_ip = get(values, "batch.ip")
batch_prefix = "/services/batch/"
service_url_for_servers = f"http://{batch_ip}:{batch_port}{batch_prefix}"

# Shared by the hub's spawner and the batch service only: batch servers start with tickets
# signed with it (spawner/credentials.py, docs/trust.md).
signing_key_file = hub_state / "batch_signing.key"
load_or_create_key(signing_key_file)
c.BatchSpawnerMixin.signing_key_file = str(signing_key_file)
# The one file store: the batch service writes it; spawners read its dataset index.
files_dir = os.environ.get("BATCHHUB_FILES_DIR") or str(batch_state / "files")
lab_volumes = get(values, "data.lab_volumes", [])
try:
    from spawner.mounts import LabVolume

    for volume in lab_volumes:
        LabVolume.from_dict(volume)  # mount paths checked once, at start
except ValueError as e:
    print(f"batchhub cannot start: data.lab_volumes: {e}", file=sys.stderr)
    sys.exit(2)

c.Spawner.start_timeout = get(values, "spawner.start_timeout")
# A batch server that dies is noticed within this many seconds (the batch job then fails).
c.Spawner.poll_interval = 10
c.Spawner.http_timeout = get(values, "spawner.http_timeout")
c.Spawner.default_url = get(values, "spawner.default_url")

if spawner_kind == "kubernetes":
    from hub_config.kubernetes import configure_kubernetes

    service_url_for_servers = configure_kubernetes(c, values, profile_dicts) or (
        service_url_for_servers
    )
    gpu_capacity = {str(k): int(v) for k, v in get(values, "gpus.cluster_capacity", {}).items()}
    gpu_inventory: list[dict] = []
    isolation_note = ""
    isolation_summary = "Kubernetes pods, one per server"
    gpu_source_summary = "node labels (nvidia.com/gpu)"
    memory_summary = "Kubernetes resource limits"
else:
    c.JupyterHub.spawner_class = "spawner.local.LocalBatchSpawner"
    local = get(values, "spawner.local", {})
    spawner_cfg = c.LocalBatchSpawner
    spawner_cfg.profiles = profile_dicts
    if get(values, "spawner.cmd") != ["jupyterhub-singleuser"]:
        # Otherwise the spawner's default: the hub's own environment, through the launcher that
        # spares each start a slow import (batch_service/singleuser.py).
        spawner_cfg.cmd = get(values, "spawner.cmd")
    spawner_cfg.isolation = local["isolation"]
    spawner_cfg.account_prefix = local["account_prefix"]
    spawner_cfg.memory_enforcement = local["memory_enforcement"]
    spawner_cfg.system_path = local["system_path"]
    spawner_cfg.homes_dir = str(state_dir / "home")
    spawner_cfg.gpu_source = get(values, "gpus.source")
    spawner_cfg.gpu_devices = get(values, "gpus.devices", [])
    spawner_cfg.nvml_types = get(values, "gpus.nvml_types", {})
    spawner_cfg.gpu_barrier = get(values, "gpus.barrier", "auto")
    spawner_cfg.interactive_default_url = get(values, "spawner.default_url")
    spawner_cfg.batch_service_url = service_url_for_servers
    # Interactive GPU servers wait in the batch service's one GPU line instead of failing.
    spawner_cfg.gpu_line_url = service_url_for_servers + "api/v1/"
    spawner_cfg.files_dir = files_dir
    spawner_cfg.lab_volumes = lab_volumes
    inventory = load_inventory(
        get(values, "gpus.source"), get(values, "gpus.devices", []), get(values, "gpus.nvml_types")
    )
    gpu_capacity = {}
    for gpu in inventory:
        gpu_capacity[gpu.type] = gpu_capacity.get(gpu.type, 0) + 1
    gpu_inventory = [{"uuid": g.uuid, "type": g.type, "index": g.index} for g in inventory]
    isolation_note = ""
    isolation_summary = f"on: one system account per user ({local['account_prefix']}<name>)"
    if not isolation_enabled(local["isolation"]):
        isolation_note = (
            "Isolation is off: batchhub was not started as root, so every server runs as "
            f"the account '{os.environ.get('USER', 'of this process')}' and users can read "
            "each other's files. Start batchhub as root for one system account per user."
        )
        isolation_summary = "OFF: " + isolation_note
    gpu_source_summary = (
        "the list in gpus.devices"
        if get(values, "gpus.source") == "list"
        or (get(values, "gpus.source") == "auto" and get(values, "gpus.devices", []))
        else "the NVIDIA driver, NVML"
    )
    from spawner.limits import MemoryEnforcer

    try:
        mechanism = MemoryEnforcer(local["memory_enforcement"]).mechanism
    except RuntimeError as e:
        print(f"batchhub cannot start: {e}", file=sys.stderr)
        sys.exit(2)
    memory_summary = (
        "cgroup v2 (the whole process tree of each server)"
        if mechanism == "cgroup"
        else "per-process rlimits (cgroup v2 is not writable here)"
    )
native_auth = get(values, "auth.type") != "oauth"
c.JupyterHub.template_vars = {
    "batchhub_isolation_note": isolation_note,
    "batchhub_native_auth": native_auth,
}

# --- authorization: custom scopes the batch service checks itself -------------------------
c.JupyterHub.custom_scopes = {
    "custom:batch:submit": {"description": "Submit batch jobs and manage your own."},
    "custom:batch:read-all": {"description": "Read everyone's batch jobs, logs and outputs."},
    "custom:batch:admin": {
        "description": "Administer the batch queue: cancel any job, pause, priorities, weights.",
        "subscopes": ["custom:batch:read-all", "custom:batch:metrics"],
    },
    "custom:batch:metrics": {"description": "Read the batch service's Prometheus metrics."},
}
batch_admin_groups = list(get(values, "auth.oauth.batch_admin_groups", []) or [])
if get(values, "auth.type") == "oauth":
    # Groups and their members come from the provider at each login (manage_groups).
    c.JupyterHub.load_groups = {}
else:
    for group in batch_admin_groups:
        c.JupyterHub.load_groups.setdefault(group, {"users": []})
c.JupyterHub.load_roles = [
    {
        "name": "user",
        "scopes": ["self", "access:services!service=batch", "custom:batch:submit"],
    },
    {
        # A server's own token (JUPYTERHUB_API_TOKEN) may submit and read its user's batch jobs
        # and nothing more: JupyterLab's Create Job and Jobs panel (batch_service/lab_scheduler.py).
        "name": "server",
        "description": "Post activity; submit and read its own user's batch jobs.",
        "scopes": [
            "users:activity!user",
            "access:servers!server",
            "access:services!service=batch",
            "custom:batch:submit!user",
        ],
    },
    {
        "name": "batch-admin",
        "description": "Administers the batch queue.",
        "scopes": ["custom:batch:admin", "access:services!service=batch"],
        "users": sorted(admin_users),
        "groups": batch_admin_groups,
    },
    {
        "name": "batch-service",
        "description": "The batch service starts and stops batch servers for users.",
        "scopes": [
            "admin:servers",
            "access:servers",
            "list:users",
            "read:users",
            "read:groups",
            "read:roles:users",
            "users:activity",
        ],
        "services": ["batch"],
    },
]

# --- the batch service -----------------------------------------------------------------
service_config = {
    "BatchServiceApp": {
        "state_dir": str(batch_state),
        "db_url": get(values, "batch.db_url") or "",
        "profiles": profile_dicts,
        "max_upload_bytes": parse_bytes(get(values, "batch.max_upload_bytes")),
        "zip_max_members": get(values, "batch.zip_max_members"),
        "zip_max_uncompressed_bytes": parse_bytes(get(values, "batch.zip_max_uncompressed_bytes")),
        "max_concurrent_jobs": get(values, "batch.max_concurrent_jobs"),
        "max_live_kernels": get(values, "batch.max_live_kernels"),
        "scheduler_interval": get(values, "batch.scheduler_interval"),
        "housekeeping_interval": get(values, "batch.housekeeping_interval"),
        "definitions_interval": get(values, "batch.definitions_interval"),
        "start_timeout": get(values, "batch.start_timeout"),
        "warm_idle_seconds": get(values, "batch.warm_idle"),
        "paused": get(values, "batch.paused"),
        "sweep_max_points": get(values, "batch.sweep_max_points"),
        "capacity": gpu_capacity,
        "gpu_inventory": gpu_inventory,
        "signing_key_file": str(signing_key_file),
        "service_url_for_servers": service_url_for_servers,
        "isolation_note": isolation_note,
        "files_dir": files_dir,
        "upload_expiry_seconds": get(values, "data.upload_expiry_seconds"),
        "user_quota": parse_bytes(get(values, "data.user_quota")),
        "group_quota": parse_bytes(get(values, "data.group_quota")),
        "user_quotas": {k: parse_bytes(v) for k, v in get(values, "data.user_quotas").items()},
        "group_quotas": {k: parse_bytes(v) for k, v in get(values, "data.group_quotas").items()},
        "dataset_max_files": get(values, "data.max_files_per_dataset"),
        "dataset_group_prefix": get(values, "data.group_prefix"),
        # The Batch pages draw the hub's nav bar: the same services and login links.
        "nav_services": ["batch"],
        "native_auth": native_auth,
    },
    "FairSharePolicy": get(values, "policy", {}),
    "Notifier": {
        "public_url": get(values, "notifications.public_url") or get(values, "hub.bind_url"),
        "timeout": get(values, "notifications.timeout_seconds"),
        "smtp_host": get(values, "notifications.email.smtp_host") or "",
        "smtp_port": get(values, "notifications.email.smtp_port"),
        "smtp_starttls": get(values, "notifications.email.starttls"),
        "smtp_ssl": get(values, "notifications.email.ssl"),
        "smtp_username": get(values, "notifications.email.username") or "",
        "from_address": get(values, "notifications.email.from_address"),
        "webhooks": get(values, "notifications.webhooks.enabled"),
        "webhook_allow_private": get(values, "notifications.webhooks.allow_private_addresses"),
    },
}
service_config_path = batch_state / "service_config.json"
service_config_path.write_text(json.dumps(service_config, indent=2))
os.chmod(service_config_path, 0o600)
service_env = {
    "BATCHHUB_STATE_DIR": str(state_dir),
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}
# The SMTP password reaches the service through its environment, never a file.
smtp_password_env = get(values, "notifications.email.password_from_env")
if smtp_password_env and os.environ.get(smtp_password_env):
    service_env["BATCHHUB_SMTP_PASSWORD"] = os.environ[smtp_password_env]
c.JupyterHub.services = [
    {
        "name": "batch",
        "display": True,
        "url": f"http://{batch_ip}:{batch_port}",
        "command": [sys.executable, "-m", "batch_service", f"--config={service_config_path}"],
        "environment": service_env,
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [
            "custom:batch:submit",
            "custom:batch:read-all",
            "custom:batch:admin",
            # only so the Batch pages show the Admin link to those the hub shows it to
            "admin-ui",
        ],
    }
]

# --- metrics: Prometheus reads /services/batch/metrics with a token of its own -----------
metrics_token = get(values, "metrics.api_token") or os.environ.get(
    get(values, "metrics.api_token_from_env") or "", ""
)
if metrics_token:
    if len(metrics_token) < 32:
        print("batchhub cannot start: the metrics token needs 32 characters", file=sys.stderr)
        sys.exit(2)
    c.JupyterHub.services.append({"name": "batch-metrics", "api_token": metrics_token})
    c.JupyterHub.load_roles.append(
        {
            "name": "batch-metrics",
            "description": "Reads the batch service's metrics, nothing else.",
            "scopes": ["custom:batch:metrics", "access:services!service=batch"],
            "services": ["batch-metrics"],
        }
    )

# --- idle culler for interactive servers ------------------------------------------------
if get(values, "culler.enabled"):
    c.JupyterHub.services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                str(HERE / "culler.py"),  # jupyterhub-idle-culler, ending with this hub
                f"--timeout={get(values, 'culler.timeout')}",
                f"--cull-every={get(values, 'culler.every')}",
                f"--max-age={get(values, 'culler.max_age')}",
            ],
        }
    )
    c.JupyterHub.load_roles.append(
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )

# --- where this batchhub answers, and one summary of what it is -------------------------
public_url = get(values, "hub.bind_url").rstrip("/")
endpoints = {
    "public": public_url + "/",
    "hub_api": f"http://{get(values, 'hub.hub_ip')}:{ports.hub}/hub/api/",
    "batch": f"http://{batch_ip}:{batch_port}{batch_prefix}",
    "proxy_api": f"http://127.0.0.1:{ports.proxy_api}/api/routes",
}
write_endpoints(state_dir / "batchhub.json", ports, endpoints)
print(
    summary(
        endpoints,
        isolation_summary,
        sorted(gpu_capacity.items()),
        gpu_source_summary,
        memory_summary,
        str(state_dir),
        {
            "hub database": get(values, "hub.db_url") and "hub.db_url" or f"{hub_state}/",
            "batch database": get(values, "batch.db_url") and "batch.db_url" or f"{batch_state}/",
        },
    ),
    file=sys.stderr,
)
