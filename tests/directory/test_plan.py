"""The sync's plan on its own: who joins, leaves, is deactivated or comes back."""

from hypothesis import given
from hypothesis import strategies as st

from directory.plan import Account, Change, Listed, MappedGroup, plan

CI = MappedGroup(source="ldap", key="cn=ci,ou=groups", team="ci")


def account(name: str, *groups: str, active: bool = True, by_directory: bool = False) -> Account:
    return Account(
        username=name,
        source="ldap",
        groups=frozenset(groups),
        is_active=active,
        deactivated_by_directory=by_directory,
    )


def listed(*groups: str, disabled: bool = False) -> Listed:
    return Listed(groups=frozenset(groups), disabled=disabled, full_name="", email="")


def test_someone_gone_from_the_directory_is_deactivated_and_leaves_mapped_teams():
    changes = plan(
        source="ldap",
        accounts=[account("alice", CI.key), account("bob", CI.key)],
        listed={"bob": listed(CI.key)},
        mappings=[CI],
        members={"ci": frozenset({"alice", "bob"})},
    )

    assert changes == [
        Change("deactivate", "alice", detail="no longer in the directory"),
        Change("leave", "alice", "ci"),
    ]


def test_only_who_the_directory_deactivated_comes_back():
    changes = plan(
        source="ldap",
        accounts=[
            account("alice", active=False, by_directory=True),
            account("bob", active=False, by_directory=False),
        ],
        listed={"alice": listed(CI.key), "bob": listed(CI.key)},
        mappings=[CI],
        members={},
    )

    assert changes == [Change("reactivate", "alice"), Change("join", "alice", "ci")]


def test_a_local_member_of_a_mapped_team_leaves_it():
    changes = plan(
        source="ldap",
        accounts=[],
        listed={},
        mappings=[CI],
        members={"ci": frozenset({"local-admin"})},
    )

    assert changes == [Change("leave", "local-admin", "ci")]


def test_another_sources_members_keep_their_last_known_groups():
    oidc_ci = MappedGroup(source="oidc", key="ci", team="ci")
    carol = Account("carol", "oidc", frozenset({"ci"}), True, False)

    changes = plan(
        source="ldap",
        accounts=[carol],
        listed={},
        mappings=[CI, oidc_ci],
        members={"ci": frozenset({"carol"})},
    )

    assert changes == []


names = st.sampled_from(["alice", "bob", "carol", "dave", "erin"])
groups = st.frozensets(st.sampled_from(["g1", "g2", "g3"]))
mappings = st.lists(
    st.builds(
        MappedGroup,
        source=st.just("ldap"),
        key=st.sampled_from(["g1", "g2", "g3"]),
        team=st.sampled_from(["ci", "security"]),
    ),
    max_size=4,
)


@given(
    accounts=st.dictionaries(names, st.tuples(groups, st.booleans(), st.booleans())),
    directory=st.dictionaries(names, st.tuples(groups, st.booleans())),
    members=st.dictionaries(st.sampled_from(["ci", "security"]), st.frozensets(names)),
    mapped=mappings,
)
def test_applying_a_plan_leaves_nothing_to_change(accounts, directory, members, mapped):
    """Whatever the state, the plan's changes reach one where the plan is empty, and a
    mapped team then holds exactly the active directory users of its groups."""
    before = [account(n, *g, active=a, by_directory=d) for n, (g, a, d) in accounts.items()]
    listing = {name: listed(*g, disabled=disabled) for name, (g, disabled) in directory.items()}
    teams = {m.team for m in mapped}
    members = {team: names for team, names in members.items() if team in teams}

    changes = plan(source="ldap", accounts=before, listed=listing, mappings=mapped, members=members)

    state = {a.username: a for a in before}
    after_members = {team: set(members.get(team, frozenset())) for team in teams}
    for change in changes:
        old = state.get(change.username)
        if change.kind in ("deactivate", "reactivate"):
            state[change.username] = Account(
                old.username,
                old.source,
                old.groups,
                change.kind == "reactivate",
                change.kind == "deactivate" or old.deactivated_by_directory,
            )
        elif change.kind == "join":
            after_members[change.team].add(change.username)
        elif change.kind == "leave":
            after_members[change.team].discard(change.username)
    after = [
        Account(
            a.username,
            a.source,
            listing[a.username].groups,
            a.is_active,
            a.deactivated_by_directory,
        )
        if a.username in listing
        else a
        for a in state.values()
    ]
    frozen = {team: frozenset(names) for team, names in after_members.items()}

    again = plan(source="ldap", accounts=after, listed=listing, mappings=mapped, members=frozen)

    assert [c for c in again if c.kind != "profile"] == []
    for team in teams:
        keys = {m.key for m in mapped if m.team == team}
        assert frozen[team] == {a.username for a in after if a.is_active and a.groups & keys}


def test_a_person_is_found_by_what_the_directory_lists_them_as():
    """A directory name Gatehouse stores normalised (the ligature in ``ﬁona``) is still
    that person: no deactivation at every sync."""
    fiona = Account("fiona", "ldap", frozenset({CI.key}), True, False, subject="ﬁona")

    changes = plan(
        source="ldap",
        accounts=[fiona],
        listed={"ﬁona": listed(CI.key)},
        mappings=[CI],
        members={"ci": frozenset({"fiona"})},
    )

    assert changes == []
