"""The directory's settings, read when asked (so tests and a changed environment count)."""

from django.conf import settings

from directory.ldap import LdapConfig, LdapDirectory


def ldap_config() -> LdapConfig | None:
    """``None`` while ``GATEHOUSE_LDAP_URL`` is blank: LDAP is off."""
    if not settings.GATEHOUSE_LDAP_URL:
        return None
    return LdapConfig(
        url=settings.GATEHOUSE_LDAP_URL,
        start_tls=settings.GATEHOUSE_LDAP_START_TLS,
        allow_plain=settings.GATEHOUSE_LDAP_ALLOW_PLAIN,
        ca_file=settings.GATEHOUSE_LDAP_CA_FILE,
        bind_dn=settings.GATEHOUSE_LDAP_BIND_DN,
        bind_password=settings.GATEHOUSE_LDAP_BIND_PASSWORD,
        user_dn_template=settings.GATEHOUSE_LDAP_USER_DN_TEMPLATE,
        user_base=settings.GATEHOUSE_LDAP_USER_BASE,
        user_filter=settings.GATEHOUSE_LDAP_USER_FILTER,
        disabled_filter=settings.GATEHOUSE_LDAP_DISABLED_FILTER,
        username_attribute=settings.GATEHOUSE_LDAP_USERNAME_ATTRIBUTE,
        full_name_attribute=settings.GATEHOUSE_LDAP_FULL_NAME_ATTRIBUTE,
        email_attribute=settings.GATEHOUSE_LDAP_EMAIL_ATTRIBUTE,
        group_base=settings.GATEHOUSE_LDAP_GROUP_BASE,
        group_filter=settings.GATEHOUSE_LDAP_GROUP_FILTER,
        member_attribute=settings.GATEHOUSE_LDAP_MEMBER_ATTRIBUTE,
        timeout=settings.GATEHOUSE_LDAP_TIMEOUT_SECONDS,
    )


def ldap_directory() -> LdapDirectory | None:
    config = ldap_config()
    return LdapDirectory(config) if config is not None else None


def oidc_enabled() -> bool:
    return bool(settings.GATEHOUSE_OIDC_ISSUER)
