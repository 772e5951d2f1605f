"""`billing users`, `billing user`, `billing subscriptions`: the catalogue, read-only."""

from __future__ import annotations

import argparse
from typing import Any

from commands.catalogue import Plan, Subscription, User
from commands.context import Context
from commands.errors import NotFound


def add_commands(sub: Any) -> None:
    users = sub.add_parser(
        "users",
        help="list users and their subscriptions",
        description="List registered users (default), or those with an active subscription.",
        epilog="examples:\n  billing users\n  billing users with-subscription prover --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    users.add_argument("--json", action="store_true", help="print JSON instead of a table")
    users.set_defaults(handler=run_users, what="list", plan=None)
    # --json is accepted after the sub-command too: `billing users list --json`.
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    which = users.add_subparsers(dest="what", metavar="{list,with-subscription}")
    which.add_parser("list", help="every user (the default)", parents=[json_flag])
    with_sub = which.add_parser(
        "with-subscription", help="users with an active subscription to PLAN", parents=[json_flag]
    )
    with_sub.add_argument("plan", metavar="PLAN", help="plan name, exactly as in subscriptions.json")

    user = sub.add_parser(
        "user",
        help="find users by id, name, email or party",
        description="Show every user whose id, name, email or party contains QUERY (any case).",
        epilog="examples:\n  billing user alice\n  billing user 1220a1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    user.add_argument("query", metavar="QUERY")
    user.add_argument("--json", action="store_true", help="print JSON instead of a table")
    user.set_defaults(handler=run_user)

    plans = sub.add_parser(
        "subscriptions",
        help="list subscription plans and prices",
        description="List the plans in subscriptions.json with price and billing interval.",
    )
    plans.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plans.set_defaults(handler=run_subscriptions)


def run_users(ctx: Context, args: argparse.Namespace) -> int:
    now = ctx.clock()
    catalogue = ctx.catalogue
    if args.what == "with-subscription":
        catalogue.plan(args.plan)  # a typo in the plan name is an error, not "nobody"
        pairs = catalogue.with_subscription(args.plan, now)
        if args.json:
            ctx.console.json([_user_json(u, now) for u, _ in pairs])
        elif not pairs:
            ctx.console.line(f"No users have an active '{args.plan}' subscription")
        else:
            expiring = [(u.id, u.name, u.email, s.expires_at) for u, s in pairs]
            title = f"Users with '{args.plan}' ({len(expiring)})"
            ctx.console.table(title, ["id", "name", "email", "expires"], expiring)
        return 0
    users = catalogue.users
    if args.json:
        ctx.console.json([_user_json(u, now) for u in users])
        return 0
    rows = [(u.id, u.name, u.email, _short_party(u.party), _subs_text(u, now)) for u in users]
    ctx.console.table(f"Registered users ({len(rows)})", ["id", "name", "email", "party", "subscriptions"], rows)
    return 0


def run_user(ctx: Context, args: argparse.Namespace) -> int:
    now = ctx.clock()
    found = ctx.catalogue.find_users(args.query)
    if not found:
        raise NotFound(f"no user matches {args.query!r}; `billing users` lists them")
    if args.json:
        ctx.console.json([_user_json(u, now) for u in found])
        return 0
    for user in found:
        rows = [
            ("id", user.id),
            ("name", user.name),
            ("email", user.email),
            ("party", user.party),
            ("subscriptions", _subs_text(user, now)),
        ]
        ctx.console.table(None, ["field", "value"], rows)
    return 0


def run_subscriptions(ctx: Context, args: argparse.Namespace) -> int:
    plans = ctx.catalogue.plans
    if args.json:
        ctx.console.json([_plan_json(p) for p in plans])
        return 0
    if not plans:
        ctx.console.line("No subscriptions available")
        return 0
    rows = [(p.name, p.id, f"{p.price} {p.currency}", _every(p.interval), p.description) for p in plans]
    ctx.console.table(f"Available subscriptions ({len(rows)})", ["name", "id", "price", "billed", "description"], rows)
    return 0


def _subs_text(user: User, now: Any) -> str:
    if not user.subscriptions:
        return "none"
    return "\n".join(_sub_text(s, now) for s in user.subscriptions)


def _sub_text(sub: Subscription, now: Any) -> str:
    state = "" if sub.active(now) else " (inactive)"
    return f"{sub.name} until {sub.expires_at}{state}"


def _short_party(party: str) -> str:
    name, _, fingerprint = party.partition("::")
    return f"{name}::{fingerprint[:8]}…" if len(fingerprint) > 8 else party


def _every(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"every {seconds // size} {unit}"
    return f"every {seconds} s"


def _user_json(user: User, now: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "party": user.party,
        "subscriptions": [
            {
                "name": s.name,
                "expires_at": s.expires_at.isoformat(),
                "starts_at": s.starts_at,
                "active": s.active(now),
            }
            for s in user.subscriptions
        ],
    }


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "name": plan.name,
        "description": plan.description,
        "price": plan.price,
        "currency": plan.currency,
        "interval_sec": plan.interval_sec,
    }
