"""The console's edits of the policy as drafts: each takes a policy document
(``rules.policy_document``) and returns a new one, never saving anything. The admin sees a
draft's preview first and saves it with ``services.policy_apply``.

Pure: documents in, documents out.
"""

import copy
from typing import Any

UP, DOWN = "up", "down"


class UnknownRule(LookupError):
    """The document has no rule of that name (someone else removed or renamed it)."""


def _index(document: dict[str, Any], name: str) -> int:
    for index, rule in enumerate(document["rules"]):
        if rule["name"] == name:
            return index
    raise UnknownRule(name)


def rule_put(
    document: dict[str, Any], rule: dict[str, Any], *, position: int, replacing: str | None = None
) -> tuple[dict[str, Any], int]:
    """``document`` with ``rule`` at ``position`` (from 1; past the end means last), in place
    of the rule named ``replacing`` if given. Also returns the rule's index in the draft, so
    the errors of its fields (``rules[2].mode``) can be shown on the editor's."""
    draft = copy.deepcopy(document)
    if replacing is not None:
        del draft["rules"][_index(draft, replacing)]
    index = min(max(position, 1), len(draft["rules"]) + 1) - 1
    draft["rules"].insert(index, copy.deepcopy(rule))
    return draft, index


def rule_removed(document: dict[str, Any], name: str) -> dict[str, Any]:
    draft = copy.deepcopy(document)
    del draft["rules"][_index(draft, name)]
    return draft


def rule_moved(document: dict[str, Any], name: str, direction: str) -> dict[str, Any]:
    """``document`` with the rule one place up or down: the place decides only ties."""
    draft = copy.deepcopy(document)
    index = _index(draft, name)
    other = index - 1 if direction == UP else index + 1
    if 0 <= other < len(draft["rules"]):
        rules = draft["rules"]
        rules[index], rules[other] = rules[other], rules[index]
    return draft
