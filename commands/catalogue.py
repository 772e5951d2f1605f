"""The users and plans catalogue: `users.json` and `subscriptions.json`, validated.

The shapes are the original tool's (`interval_sec` is a string). Every problem is
reported with file, entry index and field, all at once; a bad entry never silently
empties the catalogue. Subscriptions may carry an optional `starts_at` (the anchor of
their billing periods). Expiry is judged in UTC, the `expires_at` day included.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import msgspec

from commands.errors import CatalogueError, NotFound

USERS_FILE = "users.json"
PLANS_FILE = "subscriptions.json"
MAX_DECIMALS = 10
MAX_INTEGER_DIGITS = 28  # Daml Numeric 10: 38 digits in all, 10 after the point
MAX_INTERVAL = 10 * 365 * 86400  # ten years: longer is a typo, and period arithmetic stays in range
_WHOLE_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() also accepts "²"
_PARTY = re.compile(r"[^:\s]+::[^\s]+")
_ONE_DAY = timedelta(days=1)
T = TypeVar("T")


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    price: Decimal
    currency: str
    interval_sec: str
    description: str | None = None

    @property
    def interval(self) -> int:
        return int(self.interval_sec)


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    expires_at: date
    starts_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        """Active from ``starts_at`` (if any) through the whole ``expires_at`` day, UTC."""
        started = self.starts_at is None or self.starts_at <= now
        return started and now < self.ends_at

    @property
    def ends_at(self) -> datetime:
        """The first instant after the subscription: midnight UTC after ``expires_at``."""
        if self.expires_at == date.max:  # 9999-12-31, "never": the next day does not exist
            return datetime.max.replace(tzinfo=UTC)
        return datetime.combine(self.expires_at, time(), UTC) + _ONE_DAY


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    party: str
    name: str
    email: str
    subscriptions: tuple[Subscription, ...] = ()

    def active_subscriptions(self, now: datetime) -> list[Subscription]:
        return [s for s in self.subscriptions if s.active(now)]

    def subscription(self, plan: str) -> Subscription | None:
        return next((s for s in self.subscriptions if s.name == plan), None)


class Catalogue(msgspec.Struct, frozen=True):
    users: tuple[User, ...]
    plans: tuple[Plan, ...]

    def plan(self, name: str) -> Plan:
        for plan in self.plans:
            if plan.name == name:
                return plan
        known = ", ".join(p.name for p in self.plans) or "none"
        raise NotFound(f"no subscription plan named {name!r} (plans: {known})")

    def find_users(self, query: str) -> list[User]:
        """Every user whose id, name, email or party contains ``query`` (case-insensitive)."""
        q = query.casefold()
        return [u for u in self.users if any(q in f.casefold() for f in _fields(u))]

    def find_user(self, query: str) -> User:
        """Exactly one user: an exact id, email, name or party first, else a unique substring.

        Raises:
            NotFound: nobody matches, or several do (an ambiguous query must not pick
                one of them: that is how the old tool charged the wrong user).
        """
        q = query.casefold()
        exact = [u for u in self.users if q in (f.casefold() for f in _fields(u))]
        matches = exact or self.find_users(query)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFound(f"no user matches {query!r}; `billing users` lists them")
        names = ", ".join(f"{u.id} <{u.email}>" for u in matches[:5])
        raise NotFound(f"{query!r} matches {len(matches)} users ({names}); use an id or email")

    def with_subscription(self, plan: str, now: datetime) -> list[tuple[User, Subscription]]:
        """Users with an *active* subscription to ``plan``."""
        out = []
        for user in self.users:
            sub = user.subscription(plan)
            if sub is not None and sub.active(now):
                out.append((user, sub))
        return out

    def active_pairs(self, now: datetime) -> list[tuple[User, Subscription, Plan]]:
        """Every active (user, subscription, plan), in file order."""
        plans = {p.name: p for p in self.plans}
        return [(u, s, plans[s.name]) for u in self.users for s in u.active_subscriptions(now)]


def _fields(user: User) -> tuple[str, str, str, str]:
    return (user.id, user.name, user.email, user.party)


class _File(msgspec.Struct):
    users: list[msgspec.Raw] | None = None
    subscriptions: list[msgspec.Raw] | None = None


def load(data_dir: str | Path, *, min_interval: int = 60) -> Catalogue:
    """Read and validate both files in ``data_dir``.

    Raises:
        CatalogueError: every problem found, each with file, index and field.
    """
    folder = Path(data_dir)
    problems: list[str] = []
    plans = _load_entries(folder / PLANS_FILE, "subscriptions", Plan, problems)
    problems += _check_plans(plans, min_interval)
    users = _load_entries(folder / USERS_FILE, "users", User, problems)
    problems += _check_users(users, {p.name for _, p in plans})
    if problems:
        raise CatalogueError("invalid catalogue:\n  " + "\n  ".join(problems))
    return Catalogue(users=tuple(u for _, u in users), plans=tuple(p for _, p in plans))


def _load_entries(path: Path, key: str, kind: type[T], problems: list[str]) -> list[tuple[int, T]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = " (set BILLING_DATA_DIR to the folder that holds it)"
        problems.append(f"{path}: file not found{hint}")
        return []
    except OSError as err:
        problems.append(f"{path}: cannot read: {err.strerror}")
        return []
    try:
        entries = getattr(msgspec.json.decode(raw, type=_File), key)
    except msgspec.DecodeError as err:
        problems.append(f'{path}: not valid JSON of the form {{"{key}": [...]}}: {err}')
        return []
    if entries is None:
        problems.append(f'{path}: missing the top-level "{key}" list')
        return []
    out = []
    for index, entry in enumerate(entries):
        problems += _unknown_fields(f"{path.name}: {key}[{index}]", msgspec.json.decode(entry), kind)
        try:
            out.append((index, msgspec.json.decode(entry, type=kind)))
        except msgspec.DecodeError as err:
            problems.append(f"{path.name}: {key}[{index}]: {_field_error(err)}")
    return out


#: The entries nested in an entry, by field (a user's subscriptions).
_NESTED: dict[type, dict[str, type]] = {User: {"subscriptions": Subscription}}


def _unknown_fields(where: str, doc: object, kind: type, entry_id: object = None) -> list[str]:
    """Every key ``kind`` does not know. A misspelled key ("subscriptons") would otherwise be
    ignored, and its user kept with no subscription: billed for nothing, silently."""
    if not isinstance(doc, dict):
        return []  # not an object: the typed decode reports it
    entry_id = doc.get("id") if entry_id is None else entry_id
    owner = f" in the entry with id {_short(entry_id)}" if isinstance(entry_id, str) else ""
    known: tuple[str, ...] = kind.__struct_fields__  # type: ignore[attr-defined]
    problems = [f"{where}.{key}: unknown field{owner}{_did_you_mean(key, known)}" for key in doc if key not in known]
    for field, inner in _NESTED.get(kind, {}).items():
        items = doc.get(field)
        for j, item in enumerate(items if isinstance(items, list) else []):
            problems += _unknown_fields(f"{where}.{field}[{j}]", item, inner, entry_id)
    return problems


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else f" (known fields: {', '.join(known)})"


def _field_error(err: msgspec.DecodeError) -> str:
    text = str(err)
    if " - at `$." in text:
        message, _, where = text.rpartition(" - at `$.")
        return f"{where.rstrip('`')}: {message}"
    return text


def _check_plans(plans: list[tuple[int, Plan]], min_interval: int) -> list[str]:
    problems = []
    for index, plan in plans:
        where = f"{PLANS_FILE}: subscriptions[{index}]"
        problems += _blank(where, plan, ("id", "name"))
        problems += _price_problems(where, plan.price)
        if plan.currency != "CC":
            problems.append(f'{where}.currency: must be "CC", got {plan.currency!r}')
        seconds = plan.interval_sec
        if not _WHOLE_SECONDS.fullmatch(seconds) or not min_interval <= int(seconds) <= MAX_INTERVAL:
            problems.append(
                f"{where}.interval_sec: must be a string of whole seconds >= {min_interval}"
                f" (at most {MAX_INTERVAL}), got {_short(seconds)}"
            )
    problems += _duplicates(PLANS_FILE, "subscriptions", plans, ("id", "name"))
    return problems


def _price_problems(where: str, price: Decimal) -> list[str]:
    if not price.is_finite() or price <= 0:
        return [f"{where}.price: must be greater than 0, got {price}"]
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        return [f"{where}.price: at most {MAX_DECIMALS} decimals, got {price}"]
    if price.adjusted() >= MAX_INTEGER_DIGITS:
        return [f"{where}.price: at most {MAX_INTEGER_DIGITS} digits before the point, got {price}"]
    return []


def _blank(where: str, entry: object, fields: tuple[str, ...]) -> list[str]:
    return [f"{where}.{f}: must not be empty" for f in fields if not str(getattr(entry, f)).strip()]


def _short(value: str, limit: int = 40) -> str:
    """A value quoted for an error line, cut so a pasted blob cannot flood the terminal."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"… ({len(value)} characters)"


def _check_users(users: list[tuple[int, User]], plan_names: set[str]) -> list[str]:
    problems = []
    for index, user in users:
        where = f"{USERS_FILE}: users[{index}]"
        problems += _blank(where, user, ("id",))
        if not _PARTY.fullmatch(user.party):
            problems.append(f"{where}.party: must be a party id like name::1220…, got {_short(user.party)}")
        if "@" not in user.email:
            problems.append(f"{where}.email: not an email address: {_short(user.email)}")
        problems += _check_subscriptions(where, user, plan_names)
    problems += _duplicates(USERS_FILE, "users", users, ("id", "party", "email"))
    return problems


def _check_subscriptions(where: str, user: User, plan_names: set[str]) -> list[str]:
    problems = []
    seen = set()
    for j, sub in enumerate(user.subscriptions):
        if plan_names and sub.name not in plan_names:
            problems.append(f"{where}.subscriptions[{j}].name: no plan named {_short(sub.name)}")
        if sub.name in seen:
            problems.append(f"{where}.subscriptions[{j}].name: {sub.name!r} listed twice")
        seen.add(sub.name)
        if sub.starts_at is not None and sub.starts_at.tzinfo is None:
            problems.append(f"{where}.subscriptions[{j}].starts_at: needs a timezone (e.g. Z)")
    return problems


def _duplicates(file: str, key: str, entries: Sequence[tuple[int, object]], fields: tuple[str, ...]) -> list[str]:
    """Each repeated value of a field that must be unique (a repeated party charges twice)."""
    problems = []
    for field in fields:
        first: dict[str, int] = {}
        for index, entry in entries:
            value = str(getattr(entry, field)).casefold()
            if value in first:
                problems.append(
                    f"{file}: {key}[{index}].{field}: {getattr(entry, field)!r} "
                    f"is already used by {key}[{first[value]}]"
                )
            else:
                first[value] = index
    return problems
