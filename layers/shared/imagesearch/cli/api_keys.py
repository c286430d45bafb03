"""`imagesearch keys`: create, list and revoke API keys."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from imagesearch.cli.target import add_target_arguments, target_runtime

if TYPE_CHECKING:
    from imagesearch.auth.api_keys import ApiKeys
    from imagesearch.runtime import Runtime


# A request that read the old epoch just before the window closed may still be finishing.
REVOCATION_MARGIN_SECONDS = 0.5


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("keys", help="create, list and revoke API keys")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new key for a tenant (created if new); shown once")
    create.add_argument("--tenant", required=True, help="tenant name")
    create.add_argument("--name", help="a label for the key (who or what uses it)")
    listing = actions.add_parser("list", help="keys (prefix, tenant, label, use, revocation); never the keys")
    listing.add_argument("--tenant", help="only this tenant's keys")
    revoke = actions.add_parser("revoke", help="revoke a key by its prefix (or id)")
    revoke.add_argument("key", metavar="PREFIX")
    revoke.add_argument(
        "--now",
        action="store_true",
        help="return only once every running function refuses the key "
        "(waits IMAGESEARCH_API_KEY_REVOCATION_CHECK_SECONDS, or the key cache's time when that is 0)",
    )
    for action, func in ((create, run_create), (listing, run_list), (revoke, run_revoke)):
        add_target_arguments(action)
        action.set_defaults(func=func)


def _keys(runtime: Runtime) -> ApiKeys:
    from imagesearch.auth.api_keys import ApiKeys

    return ApiKeys(runtime.database)  # the primary: a key made here is listed at once


def run_create(args: argparse.Namespace) -> int:
    with target_runtime(args) as runtime:
        key, record = _keys(runtime).create(args.tenant, name=args.name)
    print(f"API key {record.prefix} for tenant {record.tenant_name!r} (shown once; store it now):")
    print(key)  # alone on the last line, for scripts
    return 0


def run_list(args: argparse.Namespace) -> int:
    from imagesearch.tables import format_table

    with target_runtime(args) as runtime:
        records = _keys(runtime).list(tenant_name=args.tenant)
    rows = [
        [
            r.prefix,
            r.tenant_name,
            r.name or "",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.last_used_at.strftime("%Y-%m-%d %H:%M") if r.last_used_at else "never",
            r.revoked_at.strftime("%Y-%m-%d %H:%M") if r.revoked_at else "",
        ]
        for r in records
    ]
    print(
        format_table(["prefix", "tenant", "label", "created", "last used", "revoked"], rows)
        if rows
        else "no keys"
    )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    with target_runtime(args) as runtime:
        record = _keys(runtime).revoke(args.key)
        settings = runtime.settings
    print(f"revoked {record.prefix} of tenant {record.tenant_name!r}")
    if args.now:
        # Every process re-reads the revocation epoch at most this often, and then drops its cached keys.
        window = settings.api_key_revocation_check_seconds or settings.api_key_cache_seconds
        print(f"waiting {window:g} s until every running function has seen the revocation...", flush=True)
        time.sleep(window + REVOCATION_MARGIN_SECONDS)
        print(f"{record.prefix} is refused everywhere now (replicas: once they have replayed the revocation)")
    return 0
