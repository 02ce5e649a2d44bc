from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self) -> None:
        # Django's own auth signals are the only way to see the console's logins.
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from audit import services

        user_logged_in.connect(services.record_console_login, dispatch_uid="audit.login")
        user_login_failed.connect(services.record_failed_login, dispatch_uid="audit.login_failed")
