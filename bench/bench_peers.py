"""x[k] on other int-keyed maps (when installed: pip install 'flowreg[bench]'), beside dict
and flowreg, fresh ids."""

from __future__ import annotations

import pytest

from flowreg.benchmark.suites import PEER_SUITE_DESIGNS


@pytest.mark.parametrize("impl", PEER_SUITE_DESIGNS)
def test_get(lookup_bench, impl, n):
    lookup_bench(impl, "get", n, "fresh", group=f"peers get n={n} ids=fresh")
