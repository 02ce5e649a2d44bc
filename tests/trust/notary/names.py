"""Hypothesis strategies for Docker names, shared by the reference and pattern tests."""

from hypothesis import strategies as st

COMPONENT = st.from_regex(r"[a-z0-9]{1,4}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,4}){0,2}", fullmatch=True)
DOMAIN = st.one_of(
    st.just("localhost"),
    st.from_regex(r"[a-z0-9]{1,5}(?:\.[a-z0-9]{1,5}){1,2}(?::[0-9]{1,5})?", fullmatch=True),
    st.from_regex(r"localhost:[0-9]{1,5}", fullmatch=True),
)
FULL_NAMES = st.builds(
    lambda domain, path: f"{domain}/{'/'.join(path)}",
    DOMAIN,
    st.lists(COMPONENT, min_size=1, max_size=4),
)
