"""Gatehouse's production settings with two more routes, the frameworks' floors
(``floor_urls``), for ``api_overhead.py``."""

from gatehouse.settings import *  # noqa: F403

ROOT_URLCONF = "floor_urls"
