"""Shared helpers of the benchmark scripts: lazily generated synthetic clips, timing that leaves frame
generation out, resident-memory readings, and one run per fresh process so peak memory is per run.

CPU seconds (all threads of the process) are reported beside wall time: on a shared machine they
show the work done when wall-clock frames/s mostly show the load of other processes.

Peak RSS is the kernel's high-water mark of the process (``VmHWM``); a fresh process per measured run
(``run_isolated``) makes it belong to that run only, model loading included.
"""
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback

import psutil
import torch

from dataset.synthetic import SyntheticVideo
from model import build_network
from model.checkpoint import registered_builder


def current_rss_bytes():
    """Resident set size of this process now."""
    return psutil.Process().memory_info().rss


def peak_rss_bytes():
    """High-water mark of this process's resident set size (Linux ``VmHWM``, else ``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024   # bytes on macOS, KiB on Linux


def mib(num_bytes):
    return num_bytes / 2 ** 20


class TimedIterator:
    """Wraps an iterable and adds up the wall and process-CPU seconds spent producing its items
    (``seconds``, ``cpu_seconds``), so a consumer's throughput can leave the producer out (e.g.
    rendering of synthetic frames)."""

    def __init__(self, iterable):
        self._iterator = iter(iterable)
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            item = next(self._iterator)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu
        self.count += 1
        return item


def synthetic_clip(length, height, width, num_objects, seed=0):
    """(lazy RGB frame iterator, frame-0 label map) of a seeded synthetic video; DAVIS protocol."""
    video = SyntheticVideo(seed=seed, height=height, width=width, num_objects=num_objects, length=length)
    return video.frames(), video.labels(0)


def _child(queue, fn, args, kwargs):
    try:
        queue.put(("ok", fn(*args, **kwargs)))
    except BaseException as exc:  # report any failure to the parent instead of hanging it
        queue.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def run_isolated(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` in a fresh (spawned) Python process and return its result, so the
    process's peak RSS belongs to that call alone. ``fn`` must be importable (module level)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, fn, args, kwargs))
    process.start()
    try:
        status, payload = queue.get()
    finally:
        process.join()
    if status != "ok":
        raise RuntimeError(f"isolated run of {getattr(fn, '__name__', fn)} failed:\n{payload}")
    return payload


# Starts the measured command as its child and writes that child's resource usage to a file. Linux
# counts the memory of the process a child was forked from into the child's peak, so the measured
# command is forked from this small, fresh interpreter rather than from the (large) caller.
_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
child.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    json.dump({"code": child.returncode, "maxrss": usage.ru_maxrss}, f)
"""


def run_command_measured(argv, log_path, env=None):
    """Run the command ``argv`` in a fresh process with stdout and stderr into ``log_path``; returns
    (exit code, wall seconds, the command's peak RSS in bytes). The peak is the kernel's high-water
    mark of that process alone (``wait4``), not counting the caller's memory."""
    handle, usage_path = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    start = time.perf_counter()
    try:
        with open(log_path, "w") as log:
            subprocess.run([sys.executable, "-c", _LAUNCHER, usage_path, *argv], stdout=log,
                           stderr=subprocess.STDOUT, env=env, check=True)
        with open(usage_path) as f:
            usage = json.load(f)
    finally:
        os.unlink(usage_path)
    peak = usage["maxrss"] if sys.platform == "darwin" else usage["maxrss"] * 1024
    return usage["code"], time.perf_counter() - start, peak


def child_env(threads=None, **extra):
    """Environment for a measured child process: this one's, plus ``extra``, with OpenMP/MKL limited
    to ``threads`` (None: their default, one per core)."""
    env = {**os.environ, **extra}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def set_threads(threads):
    """torch intra-op threads (None: leave torch's default, which is one per core)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def cpu_name():
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def environment_line(threads=None):
    """Machine and torch settings of a benchmark; ``threads``: what the measured runs use (default:
    this process's torch threads)."""
    threads = torch.get_num_threads() if threads is None else threads
    return (f"{cpu_name()}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2 ** 30:.0f} GiB RAM; "
            f"torch {torch.__version__}, {threads} threads")


def build_network_for(policy, seed=0):
    """A randomly initialised (seeded) network for ``policy``: the architecture registered under the
    policy's name when there is one (rde, swem), else STCN. Eval mode."""
    torch.manual_seed(seed)
    build = registered_builder(policy) or build_network   # the registry load_network uses
    network = build(single_object=False)
    return network.eval()
