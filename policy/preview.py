"""What a draft policy would change, before it is saved: every recorded image judged by the
policy in force and by the draft, and the differences.

The images are those admission reviewed in the last days (with their namespaces) and every
tag signed in a managed repository (without a namespace, as the evaluate API takes them).
Each comes with what its trust data said when Gatehouse last read it, whatever the rules:
its digest, and the signatures that counted for their signers (``Evaluation.signatures``).
No trust data is read again, so a preview of thousands of images takes a moment; the
people, teams and keys are today's. An image whose trust data was never read (its rule was
off, or Notary could not be reached) is judged as unsigned and marked ``unread``.

Only images whose applicable rule differs between the two policies are judged at all: a
rule that does not match an image cannot change its decision.

Pure: no Django, no I/O.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from policy.evaluation import (
    DENIED,
    NO_TRUST_DATA,
    ROOT_NOT_PINNED,
    Findings,
    Identities,
    ImageReference,
    NotCounted,
    Signature,
    Signer,
    decision_of,
    judge,
)
from policy.rules import OFF, Policy, Rule

ADMISSION = "admission"
SIGNED_TAG = "signed_tag"
LISTED = 200  # changes listed of each kind; the counts cover them all


@dataclass(frozen=True, slots=True)
class Subject:
    """An image as recorded: where it was seen and what its trust data said.

    ``signatures`` are (username, key ID) pairs that counted for their signer; a key ID
    of ``""`` is one Gatehouse did not record (a remembered signed tag), which counts while
    its signer has any usable signing key. ``examined`` false: the trust data was never read.
    """

    image: str
    reference: ImageReference
    namespace: str | None
    source: str  # ADMISSION | SIGNED_TAG
    examined: bool
    digest: str | None = None
    missing: str | None = None
    root_pinned: bool = True
    signatures: tuple[tuple[str, str], ...] = ()
    occurrences: int = 1


@dataclass(frozen=True, slots=True)
class Change:
    """An image whose decision the draft changes; ``occurrences`` how often it was seen."""

    image: str
    namespace: str | None
    source: str
    before: str
    after: str
    rule_before: str
    rule_after: str
    occurrences: int
    unread: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "namespace": self.namespace,
            "source": self.source,
            "before": {"decision": self.before, "rule": self.rule_before},
            "after": {"decision": self.after, "rule": self.rule_after},
            "occurrences": self.occurrences,
            "unread": self.unread,
        }


@dataclass(frozen=True)
class Preview:
    """The differences, counted in images seen (an image admitted 40 times counts 40)."""

    subjects: int
    occurrences: int
    judged: int
    newly_denied: int
    newly_allowed: int
    denied_changes: tuple[Change, ...] = field(default=())
    allowed_changes: tuple[Change, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "images": self.subjects,
            "occurrences": self.occurrences,
            "judged": self.judged,
            "newly_denied": self.newly_denied,
            "newly_allowed": self.newly_allowed,
            "denied": [change.to_json() for change in self.denied_changes],
            "allowed": [change.to_json() for change in self.allowed_changes],
        }


def findings_of(
    subject: Subject,
    identities: Identities,
    signers: dict[str, Signer],
    usable: set[str],
    *,
    now: dt.datetime,
    trust_on_first_use: bool,
) -> Findings:
    """The subject's recorded findings with today's people (``signers`` by username;
    ``usable``, who has a usable signing key): a signature counts while its signer still
    has a signing role and its key (when recorded) is still theirs and usable."""
    if not subject.examined:
        return Findings(subject.digest, missing=NO_TRUST_DATA)
    if subject.missing is not None:
        return Findings(subject.digest, missing=subject.missing)
    if not subject.root_pinned and not trust_on_first_use:
        return Findings(subject.digest, unpinned=NotCounted(ROOT_NOT_PINNED, "root not pinned"))
    counted = []
    for username, key_id in subject.signatures:
        signer = signers.get(username)
        if signer is None:
            continue
        if key_id:
            key = identities.keys.get(key_id)
            if key is None or key.owner != username or key.unusable(now) is not None:
                continue
        elif not any(  # a remembered tag: its signer must still have a usable signing key
            key.owner == username and key.unusable(now) is None for key in identities.keys.values()
        ):
            continue
        counted.append(Signature(signer, key_id))
    return Findings(subject.digest, counted=tuple(counted), named=subject.digest or "")


def decision_under(policy: Policy, rule: Rule, findings: Findings) -> str:
    """The decision ``policy`` makes when ``rule`` applies to an image with ``findings``."""
    if not policy.enabled or rule.mode == OFF:
        return decision_of(policy.enabled, rule.mode, False)
    passed, _, _ = judge(findings, rule.requirement)
    return decision_of(policy.enabled, rule.mode, passed)


def preview(
    current: Policy,
    draft: Policy,
    subjects: Iterable[Subject],
    identities: Identities,
    *,
    now: dt.datetime,
) -> Preview:
    """Judge each subject by ``current`` and by ``draft``; list what the draft changes."""
    rules_seen: dict[tuple[str, str | None], tuple[Rule, Rule]] = {}
    denied: list[Change] = []
    allowed: list[Change] = []
    count = occurrences = judged = newly_denied = newly_allowed = 0
    switch_changed = current.enabled != draft.enabled
    signers = {signer.username: signer for signer in identities.signers.values()}
    usable = {key.owner for key in identities.keys.values() if key.unusable(now) is None}
    for subject in subjects:
        count += 1
        occurrences += subject.occurrences
        scope = (subject.reference.gun, subject.namespace)
        pair = rules_seen.get(scope)
        if pair is None:
            pair = (current.rule_for(*scope), draft.rule_for(*scope))
            rules_seen[scope] = pair
        before_rule, after_rule = pair
        if before_rule == after_rule and not switch_changed:
            continue
        judged += 1
        findings = findings_of(
            subject,
            identities,
            signers,
            usable,
            now=now,
            trust_on_first_use=draft.trust_on_first_use,
        )
        before = decision_under(current, before_rule, findings)
        after = decision_under(draft, after_rule, findings)
        if (before == DENIED) == (after == DENIED):
            continue
        change = Change(
            subject.image,
            subject.namespace,
            subject.source,
            before,
            after,
            before_rule.name,
            after_rule.name,
            subject.occurrences,
            unread=not subject.examined,
        )
        if after == DENIED:
            newly_denied += subject.occurrences
            if len(denied) < LISTED:
                denied.append(change)
        else:
            newly_allowed += subject.occurrences
            if len(allowed) < LISTED:
                allowed.append(change)
    return Preview(
        subjects=count,
        occurrences=occurrences,
        judged=judged,
        newly_denied=newly_denied,
        newly_allowed=newly_allowed,
        denied_changes=tuple(denied),
        allowed_changes=tuple(allowed),
    )
