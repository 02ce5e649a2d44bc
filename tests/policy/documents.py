"""A small policy document the policy-as-code tests share: a permissive default and one
enforced rule for registry.example.com/prod/* that needs one member of ci."""

PROD = {
    "name": "prod",
    "images": ["registry.example.com/prod/*"],
    "namespaces": [],
    "mode": "enforced",
    "require": {"match": "all", "teams": [{"team": "ci", "count": 1}]},
}
DOCUMENT = {
    "enabled": True,
    "default": {"mode": "permissive", "require": {"match": "all", "teams": []}},
    "rules": [PROD],
}
