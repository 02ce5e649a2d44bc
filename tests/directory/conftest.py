"""Gatehouse pointed at the directory's real servers (the ``slapd`` and ``oidc_provider``
fixtures, loaded for the whole suite by ``tests/conftest.py``)."""

import pytest

from devtools.slapd import DISABLED_FILTER, Slapd


def ldap_settings_for(settings, directory: Slapd, **overrides: object) -> None:
    """Point Gatehouse at ``directory`` over LDAPS with its CA, searching as the service
    account, disabled people found by the ppolicy lock."""
    values = {
        "GATEHOUSE_LDAP_URL": directory.ldaps_url,
        "GATEHOUSE_LDAP_CA_FILE": str(directory.ca_file),
        "GATEHOUSE_LDAP_BIND_DN": directory.service_dn,
        "GATEHOUSE_LDAP_BIND_PASSWORD": directory.service_password,
        "GATEHOUSE_LDAP_USER_DN_TEMPLATE": "",
        "GATEHOUSE_LDAP_USER_BASE": directory.people_base,
        "GATEHOUSE_LDAP_GROUP_BASE": directory.groups_base,
        "GATEHOUSE_LDAP_DISABLED_FILTER": DISABLED_FILTER,
        **overrides,
    }
    for name, value in values.items():
        setattr(settings, name, value)


@pytest.fixture
def ldap_settings(settings, slapd):
    """Gatehouse configured for the session's slapd."""
    ldap_settings_for(settings, slapd)
    return settings


@pytest.fixture
def ldap_people_settings(settings, slapd_people):
    """Gatehouse configured for the session's slapd, for a test that changes it."""
    ldap_settings_for(settings, slapd_people)
    return settings
