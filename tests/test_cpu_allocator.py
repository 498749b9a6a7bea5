"""util/cpu_allocator.py: glibc allocator tuning is applied on glibc, refused clearly elsewhere."""
import platform

import pytest

from util import cpu_allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc")
def test_applies_on_glibc():
    assert cpu_allocator.retain_freed_memory() == (True, "")


def test_other_c_libraries_are_reported_and_left_alone(monkeypatch):
    monkeypatch.setattr(cpu_allocator.platform, "libc_ver", lambda: ("", ""))
    monkeypatch.setattr(cpu_allocator.ctypes, "CDLL", lambda *a: pytest.fail("must not touch the C library"))
    applied, reason = cpu_allocator.retain_freed_memory()
    assert not applied and "not glibc" in reason


@pytest.mark.parametrize("limit", [0, -1, 2 ** 31])
def test_limit_out_of_range_is_rejected(limit):
    with pytest.raises(ValueError, match="limit_bytes"):
        cpu_allocator.retain_freed_memory(limit)
