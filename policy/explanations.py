"""What the console and the API say beyond an evaluation's decision: the next step for each
reason it failed (``policy.next_steps``), the remembered signatures that explain a tag
gone from the trust data (``trust.signed_tags``), and a repository's signed tags, each
evaluated now by the policy's own rule.

Reads only; the repository's page shows its signed tags through the ``signed_tags``
template tag, since ``trust`` lies below ``policy`` and cannot evaluate.
"""

from dataclasses import dataclass

from accounts.models import User
from policy import next_steps
from policy.evaluation import (
    TRUST_INVALID,
    UNKNOWN_TAG,
    Evaluation,
    Identities,
    InvalidReference,
    NotCounted,
    TrustData,
    evaluate,
    parse_image_reference,
    trust_data_from_verified,
)
from policy.inputs import evaluation_context
from policy.next_steps import NextStep, Remembered
from policy.redaction import GENERAL_WORDS, UNKNOWN_WORDS, redact
from policy.selectors import explanation_visible, repository_signer_teams
from trust import signed_tags
from trust.models import Repository
from trust.notary.errors import InvalidMetadata, NotaryRejected, NotaryUnavailable, NotFound
from trust.trust_data import verified_repository

NOTARY_REFUSED = "notary_refused"  # Notary answered a read with a 4xx other than 404


def _remembered(gun: str, tag: str | None = None) -> list[Remembered]:
    return [
        Remembered(row.tag, row.digest, row.role, row.signer.username)
        for row in signed_tags.remembered(gun=gun, tag=tag)
    ]


def _general(items: tuple[NotCounted, ...]) -> tuple[NotCounted, ...]:
    """Remembered signatures told to someone who may not see the repository: categories."""
    words = {**GENERAL_WORDS, **next_steps.GENERAL_WORDS}
    return tuple(
        dict.fromkeys(
            NotCounted(item.reason, words.get(item.reason, UNKNOWN_WORDS)) for item in items
        )
    )


def _current_trust(gun: str) -> TrustData:
    """The trust data the evaluation just read (cached by ``trust.trust_data``)."""
    return trust_data_from_verified(verified_repository(gun))


def evaluation_explained(
    *, viewer: User, evaluation: Evaluation, identities: Identities | None = None
) -> tuple[Evaluation, bool, tuple[NextStep, ...]]:
    """The evaluation as ``viewer`` may read it (redacted as ``selectors.evaluation_for``
    does for anyone who may not see the repository), whether it was, and its next steps.
    A tag the trust data no longer names is explained by what its signers signed, when
    Gatehouse remembers it. ``identities`` are those the evaluation judged by
    (``services.image_evaluation``); without them they are read as of now. An evaluation
    that passes has no next step, so nothing more is read for it."""
    visible = explanation_visible(viewer=viewer, gun=evaluation.gun)
    if not next_steps.failing(evaluation):
        return (evaluation, False, ()) if visible else (redact(evaluation), True, ())
    if identities is None:
        identities = evaluation_context().identities
    signer_teams = repository_signer_teams(evaluation.gun)
    gone: tuple[NotCounted, ...] = ()
    if evaluation.tag is not None and evaluation.missing in (None, UNKNOWN_TAG):
        remembered = _remembered(evaluation.gun, evaluation.tag)
        if remembered:
            try:
                trust = _current_trust(evaluation.gun)
            except (NotaryRejected, InvalidMetadata, NotaryUnavailable):
                pass  # changed since the evaluation read it: nothing to compare with
            else:
                gone = next_steps.gone_signatures(
                    remembered, trust, identities, signer_teams=signer_teams
                )
    if not visible:
        hidden = redact(evaluation)
        return hidden, True, next_steps.next_steps(hidden, gone=_general(gone))
    left = next_steps.departed(evaluation, identities, signer_teams=signer_teams)
    return evaluation, False, next_steps.next_steps(evaluation, gone=gone, left=left)


# --- A repository's signed tags ------------------------------------------------------------


@dataclass(frozen=True)
class SignedTagRow:
    """One tag: what the trust data (or Gatehouse's memory) says, and the policy's verdict
    now, with a next step for each reason it fails. ``signed_by`` lists (username or None,
    role) for each role naming the tag; ``evaluation`` is None for a tag only remembered."""

    tag: str
    digest: str | None
    signed_by: tuple[tuple[str | None, str], ...]
    in_trust_data: bool
    passes: bool
    evaluation: Evaluation | None
    steps: tuple[NextStep, ...]


@dataclass(frozen=True)
class SignedTags:
    """A repository's signed tags, or why they cannot be shown (``problem``; no trust data
    at all is ``trust_data`` False)."""

    rows: tuple[SignedTagRow, ...] = ()
    problem: NextStep | None = None
    trust_data: bool = True


def _signed_by(
    tag: str, trust: TrustData, identities: Identities
) -> tuple[tuple[str | None, str], ...]:
    holders = []
    for name, role in sorted(trust.roles.items()):
        if tag in role.targets:
            signer = identities.signers.get(name)
            holders.append((signer.username if signer else None, name))
    return tuple(holders)


def _present_row(
    tag: str,
    evaluation: Evaluation,
    gone: tuple[NotCounted, ...],
    trust: TrustData,
    identities: Identities,
    signer_teams: tuple[str, ...],
    visible: bool,
) -> SignedTagRow:
    named = next(role.targets[tag] for role in trust.roles.values() if tag in role.targets)
    left: dict[str, str] = {}
    if visible:
        left = next_steps.departed(evaluation, identities, signer_teams=signer_teams)
    else:
        evaluation, gone = redact(evaluation), _general(gone)
    return SignedTagRow(
        tag=tag,
        digest=evaluation.digest or f"sha256:{named}",
        signed_by=_signed_by(tag, trust, identities) if visible else (),
        in_trust_data=True,
        passes=not next_steps.failing(evaluation),
        evaluation=evaluation,
        steps=next_steps.next_steps(evaluation, gone=gone, left=left),
    )


def _gone_row(
    tag: str,
    remembered: list[Remembered],
    gone: tuple[NotCounted, ...],
    teams: tuple[str, ...],
    visible: bool,
) -> SignedTagRow:
    if not visible:
        gone = _general(gone)
    return SignedTagRow(
        tag=tag,
        digest=remembered[0].digest,
        signed_by=tuple((row.username, row.role) for row in remembered) if visible else (),
        in_trust_data=False,
        passes=False,
        evaluation=None,
        steps=next_steps.gone_steps(gone, teams=teams),
    )


def repository_signed_tags(*, viewer: User, repository: Repository) -> SignedTags:
    """Every tag in the repository's verified trust data, evaluated now as "Check an image"
    would, then every tag Gatehouse remembers a signer signing that the trust data no longer
    names, with why. Trust data that does not verify, or Notary unreachable, is a
    ``problem`` with its next step; a repository not ready is not read."""
    gun = repository.gun
    if repository.state != Repository.State.READY:
        return SignedTags(trust_data=False)  # nothing Gatehouse made is signed there yet
    try:
        trust = _current_trust(gun)
    except NotFound:
        return SignedTags(trust_data=False)
    except InvalidMetadata as error:
        return SignedTags(
            problem=NextStep(
                TRUST_INVALID,
                f"the trust data of {gun} does not verify: {error}",
                "Ask an admin to look at the repository's drift and jobs, and to sync it.",
            )
        )
    except NotaryUnavailable as error:
        return SignedTags(problem=next_steps.unreachable(str(error)))
    except NotaryRejected as error:  # a 4xx but 404: Gatehouse's own access to Notary is wrong
        return SignedTags(
            problem=NextStep(
                NOTARY_REFUSED,
                f"Notary refused to give the trust data of {gun}: {error}",
                "Ask an admin to check Gatehouse's access to Notary: /readyz says whether "
                "Gatehouse reaches it.",
            )
        )
    # Read after the trust data, so a replay that read found already counts.
    context = evaluation_context()
    teams = tuple(sorted(team.name for team in repository.signer_teams.all()))
    visible = explanation_visible(viewer=viewer, gun=gun)
    remembered: dict[str, list[Remembered]] = {}
    for row in _remembered(gun):
        remembered.setdefault(row.tag, []).append(row)
    present = sorted({tag for role in trust.roles.values() for tag in role.targets})
    rows = []
    for tag in present:
        try:
            reference = parse_image_reference(f"{gun}:{tag}")
        except InvalidReference:
            continue  # not a tag Docker can name
        # The snapshot every row and memory is compared with: a sync that publishes while
        # the page is drawn must not make a row disagree with itself.
        evaluation = evaluate(reference, context.policy, trust, context.identities)
        gone: tuple[NotCounted, ...] = ()
        if next_steps.failing(evaluation) and tag in remembered:
            gone = next_steps.gone_signatures(
                remembered[tag], trust, context.identities, signer_teams=teams
            )
        rows.append(_present_row(tag, evaluation, gone, trust, context.identities, teams, visible))
    for tag in sorted(set(remembered) - set(present)):
        gone = next_steps.gone_signatures(
            remembered[tag], trust, context.identities, signer_teams=teams
        )
        rows.append(_gone_row(tag, remembered[tag], gone, teams, visible))
    return SignedTags(rows=tuple(rows))
