"""`billing pay`, `pay-all` and `restart`: their options; the work is `commands/services/payments.py`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from commands.context import Context
from commands.errors import CommandError
from commands.services.payments import pay_all, pay_one, restart
from commands.services.runtime import require_canton


def add_commands(sub: Any) -> None:
    pay = sub.add_parser(
        "pay",
        help="charge one user for one period of a plan",
        description="Charge one period of one subscription (the current period unless --period "
        "is given). A period that is already paid is reported, never charged again.",
        epilog="examples:\n  billing pay -u alice -s prover\n  billing pay -u alice@example.com -s "
        "verifier --period 12 --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pay.add_argument("-u", "--user", required=True, help="user id, email, name or party")
    pay.add_argument("-s", "--subscription", required=True, help="plan name")
    pay.add_argument(
        "--period",
        type=int,
        metavar="N",
        help="period index, counted from the subscription's starts_at or else from 1970-01-01 "
        "UTC (default: the current one; --dry-run shows its index and times)",
    )
    pay.add_argument("--dry-run", action="store_true", help="show what would be charged; change nothing")
    pay.set_defaults(handler=run_pay)

    pay_all = sub.add_parser(
        "pay-all",
        help="charge every due period of every active subscription",
        description="Request the current period of every active subscription that is not "
        "requested yet, wait for every outcome, and print a summary.",
    )
    pay_all.add_argument("--dry-run", action="store_true", help="list what would be charged")
    pay_all.set_defaults(handler=run_pay_all)

    restart = sub.add_parser(
        "restart",
        help="recover missed periods and retry failed payments",
        description="Request the periods that fell due while billing was down (newest first, "
        "at most RECOVERY_MAX_PERIODS per subscription) and retry failed payments that an "
        "operator can fix (insufficient funds, timeouts). Running it twice requests nothing twice.",
        epilog="example:\n  billing restart --limit 10 --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restart.add_argument("--limit", type=int, default=100, metavar="N", help="request at most N payments")
    restart.add_argument(
        "--recover-missed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="request periods that fell due while billing was down",
    )
    restart.add_argument(
        "--process-pending",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="retry failed payments that may succeed now",
    )
    restart.add_argument("--dry-run", action="store_true", help="list what would be requested")
    restart.set_defaults(handler=run_restart)


def run_pay(ctx: Context, args: argparse.Namespace) -> int:
    user = ctx.catalogue.find_user(args.user)
    plan = ctx.catalogue.plan(args.subscription)
    sub = user.subscription(plan.name)
    if sub is None or not sub.active(ctx.clock()):
        raise CommandError(f"{user.id} has no active '{plan.name}' subscription (see `billing user {user.id}`)")
    require_canton(ctx, "`billing pay`")
    return asyncio.run(pay_one(ctx, (user, sub, plan), period=args.period, dry_run=args.dry_run))


def run_pay_all(ctx: Context, args: argparse.Namespace) -> int:
    if not args.dry_run:
        require_canton(ctx, "`billing pay-all`")
    return asyncio.run(pay_all(ctx, dry_run=args.dry_run))


def run_restart(ctx: Context, args: argparse.Namespace) -> int:
    if not args.dry_run:
        require_canton(ctx, "`billing restart`")
    return asyncio.run(
        restart(
            ctx,
            limit=args.limit,
            recover_missed=args.recover_missed,
            process_pending=args.process_pending,
            dry_run=args.dry_run,
        )
    )
