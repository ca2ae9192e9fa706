"""Login through an OpenID Connect provider (oauthenticator's GenericOAuthenticator).

Endpoints come from the values file or, when left empty, from the issuer's discovery document.
Groups come from a claim; members of `admin_groups` are hub admins and members of
`batch_admin_groups` get the batch-admin role (custom:batch:admin).
"""

from __future__ import annotations

import os
from typing import Any

import requests

from hub_config.values import ValuesError, get


def discover(issuer: str, verify: bool) -> dict[str, Any]:
    """The provider's OpenID Connect discovery document."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=10, verify=verify)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as e:
        raise ValuesError(f"auth.oauth.issuer: cannot read {url}: {e}") from None


def configure_oauth(c: Any, values: dict[str, Any]) -> None:
    """Point the hub at the provider named in auth.oauth."""
    oauth = get(values, "auth.oauth", {}) or {}
    verify = oauth.get("tls_verify", True)
    endpoints = {k: oauth.get(k) for k in ("authorize_url", "token_url", "userdata_url")}
    if not all(endpoints.values()):
        if not oauth.get("issuer"):
            raise ValuesError("auth.oauth: give issuer, or authorize_url, token_url, userdata_url")
        found = discover(oauth["issuer"], verify)
        endpoints["authorize_url"] = endpoints["authorize_url"] or found["authorization_endpoint"]
        endpoints["token_url"] = endpoints["token_url"] or found["token_endpoint"]
        endpoints["userdata_url"] = endpoints["userdata_url"] or found["userinfo_endpoint"]
    for key in ("client_id", "callback_url"):
        if not oauth.get(key):
            raise ValuesError(f"auth.oauth.{key} is required for OpenID Connect login")
    secret = oauth.get("client_secret") or os.environ.get(oauth.get("client_secret_from_env") or "")
    authenticator = c.GenericOAuthenticator
    c.JupyterHub.authenticator_class = "generic-oauth"
    authenticator.login_service = oauth.get("login_service", "your institution")
    authenticator.client_id = oauth["client_id"]
    authenticator.client_secret = secret or ""
    authenticator.oauth_callback_url = oauth["callback_url"]
    authenticator.authorize_url = endpoints["authorize_url"]
    authenticator.token_url = endpoints["token_url"]
    authenticator.userdata_url = endpoints["userdata_url"]
    authenticator.scope = list(oauth.get("scope") or ["openid", "profile", "email"])
    authenticator.username_claim = oauth.get("username_claim") or "preferred_username"
    authenticator.validate_server_cert = verify
    groups_claim = oauth.get("groups_claim") or "groups"
    allowed = list(oauth.get("allowed_groups") or [])
    admins = list(oauth.get("admin_groups") or [])
    batch_admins = list(oauth.get("batch_admin_groups") or [])
    # Group membership comes from the provider at each login; roles follow the groups.
    authenticator.manage_groups = True
    authenticator.auth_state_groups_key = f"oauth_user.{groups_claim}"
    if allowed:
        authenticator.allowed_groups = set(allowed) | set(admins) | set(batch_admins)
    else:
        authenticator.allow_all = True
    if admins:
        authenticator.admin_groups = set(admins)
