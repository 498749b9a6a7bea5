"""Keep freed tensor buffers in the process heap on glibc Linux, for CPU inference at full resolution.

glibc gives every allocation above a (dynamic, at most 32 MiB) threshold its own ``mmap`` and returns
it to the OS on free; at 480p one 2-object decoder activation is ~53 MB, so every such tensor is
page-faulted in again, which costs about 10% of CPU inference time (600k minor faults per 10
frames). Raising the mmap and trim thresholds lets freed buffers be reused instead. It changes a
process-wide libc setting, so the library never does it on its own: the evaluation and benchmark
scripts call :func:`retain_freed_memory` (``--no_malloc_tuning`` turns it off), and notebooks may.
"""
import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1   # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
DEFAULT_LIMIT_BYTES = 1 << 30


def add_flag(parser):
    """``--no_malloc_tuning``, the one switch of every script that calls :func:`retain_freed_memory`."""
    parser.add_argument("--no_malloc_tuning", action="store_true",
                        help="leave glibc's allocator as it is (by default freed buffers are kept for reuse, "
                             "about 10%% faster CPU inference at 480p; see util/cpu_allocator.py)")


def retain_freed_memory(limit_bytes=DEFAULT_LIMIT_BYTES):
    """Serve allocations below ``limit_bytes`` from the heap and keep up to that much freed memory.

    Returns ``(applied, reason)``: ``(True, "")`` on glibc, ``(False, why)`` elsewhere (the
    allocator is left as it is; nothing else changes).
    """
    if limit_bytes <= 0 or limit_bytes >= 2 ** 31:
        raise ValueError(f"limit_bytes must be in (0, 2 GiB), got {limit_bytes}")
    library, _ = platform.libc_ver()
    if library != "glibc":
        return False, f"the C library is {library!r}, not glibc" if library else "the C library is not glibc"
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD):
        if libc.mallopt(option, int(limit_bytes)) != 1:
            return False, f"mallopt({option}, {limit_bytes}) was refused"
    return True, ""
