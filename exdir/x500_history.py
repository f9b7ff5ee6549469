"""X500 history across forests: what a migrated mailbox must carry from its source.

Replies to old mail and Outlook's cached addresses name a recipient by the
legacyExchangeDN it had in the source organisation (or by any X500 it carried there).
Unless the target mailbox holds each of those as an X500 proxy, they bounce as
`IMCEAEX-…` non-delivery reports — the most asked-about legacyExchangeDN problem after
a cross-forest or cross-organisation move.  Microsoft's own migration checks ask the
same (the source legacyExchangeDN must be an X500 on the target, and every source X500
too).

Each target recipient is matched to its source by msExchMailboxGuid (a mailbox keeps
it when moved), then by the keys the administrator chose (`nickname`, `smtp`, `upn`, in
that order by default); a key that finds two source objects makes the recipient
ambiguous, never a guess.  Both sides are read once each (exdir.readers.recipients.
read_migration_side) and indexed here; nothing here reads the directory.

What a target lacks is compared as Active Directory compares proxy addresses (without
regard to case): never duplicated, and never the target's own legacyExchangeDN (an X500
equal to it is harmless but meaningless, and the uniqueness rules count it twice).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from . import dn as dnu
from .entries import EntryLike
from .errors import InputError
from .legacydn import key as legacy_key
from .legacydn import problems
from .plan import Mod, Modify, Plan

KEYS = ("nickname", "smtp", "upn")
#: what each side is read for
READ = ("objectClass", "mailNickname", "legacyExchangeDN", "proxyAddresses", "mail",
        "userPrincipalName", "msExchMailboxGuid")


def match_keys(given: Sequence[str]) -> tuple[str, ...]:
    """--match as given (repeated or comma-separated), checked; the default order without."""
    chosen: list[str] = []
    for item in given:
        for word in item.split(","):
            word = word.strip().lower()
            if not word:
                continue
            if word not in KEYS:
                raise InputError(f"unknown --match key {word!r}: use nickname, smtp or upn")
            if word not in chosen:
                chosen.append(word)
    return tuple(chosen) if chosen else KEYS


def _smtp(entry: EntryLike) -> set[str]:
    out = {p[5:].lower() for p in entry.texts("proxyAddresses") if p[:5].lower() == "smtp:"}
    mail = entry.text("mail")
    if mail:
        out.add(mail.lower())
    return out


def _keys(entry: EntryLike, key: str) -> set[str]:
    if key == "nickname":
        nick = entry.text("mailNickname")
        return {nick.lower()} if nick else set()
    if key == "smtp":
        return _smtp(entry)
    upn = entry.text("userPrincipalName")
    return {upn.lower()} if upn else set()


def _guid(entry: EntryLike) -> bytes | None:
    values = entry.get("msExchMailboxGuid")
    value = values[0] if values else None
    return value if isinstance(value, bytes) and value else None


def x500_values(entry: EntryLike) -> list[str]:
    """The legacyExchangeDN values an entry's X500 proxies carry, as spelled."""
    return [p[5:] for p in entry.texts("proxyAddresses") if p[:5].upper() == "X500:"]


@dataclass(frozen=True)
class Match:
    """A target recipient, its source and the X500 values it lacks (as the source spells them)."""

    target: EntryLike
    source: EntryLike
    by: str  # guid | nickname | smtp | upn
    missing: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (source value, why): not a legacyExchangeDN


@dataclass(frozen=True)
class Unmatched:
    """A target recipient with no source (candidates empty) or several (ambiguous)."""

    target: str  # its DN, or the --only identity that named nothing
    reason: str
    candidates: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return bool(self.candidates)


@dataclass
class Matching:
    matches: list[Match] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)

    @property
    def ambiguous(self) -> list[Unmatched]:
        return [u for u in self.unmatched if u.ambiguous]

    @property
    def missing(self) -> list[Match]:
        return [m for m in self.matches if m.missing]

    @property
    def skipped(self) -> list[tuple[str, str, str]]:
        """(target DN, source value, why) of every source value not taken."""
        return [(m.target.dn, v, why) for m in self.matches for v, why in m.skipped]

    @property
    def plan(self) -> Plan:
        """One step per target that lacks anything: add its missing X500 proxies."""
        return Plan(tuple(
            Modify(m.target.dn, (Mod("add", "proxyAddresses",
                                     tuple(f"X500:{v}" for v in m.missing)),),
                   f"X500 history from {m.source.dn} (matched by {m.by})")
            for m in self.missing))


class _Index:
    """The source recipients by mailbox GUID and by each match key (lower case)."""

    def __init__(self, sources: Iterable[EntryLike], keys: Sequence[str]) -> None:
        self.by_guid: dict[bytes, list[EntryLike]] = {}
        self.by_key: dict[str, dict[str, list[EntryLike]]] = {k: {} for k in keys}
        for entry in sources:
            guid = _guid(entry)
            if guid is not None:
                self.by_guid.setdefault(guid, []).append(entry)
            for k in keys:
                for value in _keys(entry, k):
                    self.by_key[k].setdefault(value, []).append(entry)

    def find(self, target: EntryLike) -> tuple[str, list[EntryLike]]:
        """(how, candidates): the first way that finds any source; no candidates: none did."""
        guid = _guid(target)
        if guid is not None and guid in self.by_guid:
            return "guid", self.by_guid[guid]
        for k, index in self.by_key.items():
            found: dict[str, EntryLike] = {}
            for value in _keys(target, k):
                for e in index.get(value, ()):
                    found[dnu.key(e.dn)] = e
            if found:
                return k, list(found.values())
        return "", []


def missing_values(target: EntryLike, source: EntryLike
                   ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The source's legacyExchangeDN and X500 values the target lacks, each once; and the
    source values that are no legacyExchangeDN (an export from another forest is input
    like any other: a control character or a stray `X500:junk` is never written)."""
    have = {legacy_key(v) for v in x500_values(target)}
    have |= {legacy_key(v) for v in target.texts("legacyExchangeDN")}
    out: list[str] = []
    skipped: list[tuple[str, str]] = []
    for value in [*source.texts("legacyExchangeDN"), *x500_values(source)]:
        k = legacy_key(value)
        if not value.strip() or k in have:
            continue
        bad = problems(value)
        if bad:
            skipped.append((value, bad[0]))
            continue
        have.add(k)
        out.append(value)
    return tuple(out), tuple(skipped)


def match(targets: Sequence[EntryLike], sources: Sequence[EntryLike],
          keys: Sequence[str] = KEYS, only: Sequence[str] | None = None) -> Matching:
    """Every target recipient (or those `only` names) against the sources."""
    chosen: Sequence[EntryLike] = targets
    result = Matching()
    if only is not None:
        chosen, absent = _select(targets, only)
        result.unmatched += [Unmatched(i, "not a recipient of the target directory")
                             for i in absent]
    index = _Index(sources, keys)
    for target in chosen:
        how, candidates = index.find(target)
        if not candidates:
            result.unmatched.append(Unmatched(target.dn, "no source recipient matches"))
        elif len(candidates) > 1:
            result.unmatched.append(Unmatched(
                target.dn, f"{len(candidates)} source recipients match by {how}",
                tuple(sorted(c.dn for c in candidates))))
        else:
            missing, skipped = missing_values(target, candidates[0])
            result.matches.append(Match(target, candidates[0], how, missing, skipped))
    return result


def _select(targets: Sequence[EntryLike], only: Sequence[str]
            ) -> tuple[list[EntryLike], list[str]]:
    """The targets an --only list names (a DN, mailNickname, SMTP address or
    legacyExchangeDN each), and the identities that name none."""
    by: dict[str, EntryLike] = {}
    for t in targets:
        by[f"dn:{dnu.key(t.dn)}"] = t
        for k in ("nickname", "smtp"):
            for v in _keys(t, k):
                by.setdefault(f"id:{v}", t)
        for v in t.texts("legacyExchangeDN"):
            by.setdefault(f"id:{legacy_key(v)}", t)
    chosen: dict[str, EntryLike] = {}
    absent: list[str] = []
    for ident in only:
        found = None
        if "=" in ident and "," in ident:
            try:
                found = by.get(f"dn:{dnu.key(ident)}")
            except InputError:
                found = None
        if found is None:
            found = by.get(f"id:{legacy_key(ident) if ident.startswith('/') else ident.lower()}")
        if found is None:
            absent.append(ident)
        else:
            chosen[dnu.key(found.dn)] = found
    return list(chosen.values()), absent


def read_only_file(path: str) -> list[str]:
    """--only FILE: one identity per line; blank lines and `#` comments skipped."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the --only file: {exc.strerror}", source=path) from None
    except UnicodeDecodeError:
        raise InputError("the --only file is not UTF-8 text", source=path) from None
    return [s for line in lines if (s := line.strip()) and not s.startswith("#")]
