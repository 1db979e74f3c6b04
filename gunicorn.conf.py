# Read by gunicorn from the working directory whatever its command line (Procfile, make demo, tests).
import glob
import os
import shutil
import tempfile

# The access log never carries a token, code or secret that a client put in a URL; the error log
# and the app's own log lines are JSON, one object a line (webapp/accesslog.py, webapp/logs.py).
logger_class = "webapp.accesslog.RedactingLogger"

# The app is made once, in the master, and the workers fork from it: the pages holding its modules
# stay shared between them until written, so each worker's PSS (its share of physical memory) is
# 14-24 MB lower; RSS counts shared pages in full and moves 0-6 MB (bench/README "Round 5").
# create_app opens no connection and starts no thread (tests/test_preload.py), so nothing is shared
# that must not be. A HUP re-forks the workers from that app: new code needs a restart.
preload_app = True

# Prometheus multiprocess mode (webapp/metrics.py): every worker writes its counts to files in
# PROMETHEUS_MULTIPROC_DIR and a scrape adds them up. Set here, before the workers fork, so each
# imports prometheus_client with it. An operator may name the directory; else a fresh temporary one.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="renkei-metrics-")
    os.environ["RENKEI_METRICS_DIR_IS_TEMPORARY"] = "1"


def on_starting(server):
    """Counts start at zero with the server: drop files a previous run left in a named directory."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in glob.glob(os.path.join(path, "*.db")):
        os.remove(name)


def child_exit(server, worker):
    """A dead worker's live gauges stop counting; its counters and histograms still add up."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get("RENKEI_METRICS_DIR_IS_TEMPORARY"):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def pre_fork(server, worker):
    """Objects made before the fork (the app, its modules) go to the collector's permanent generation:
    a collection in a worker then never writes to their pages, which stay shared with the master."""
    import gc

    gc.freeze()


def post_fork(server, worker):
    """At most two malloc arenas in a worker: glibc would give each of the worker's threads its own
    (up to 8 a core), each holding freed memory of its own; two keep the worker's RSS down."""
    import ctypes
    import ctypes.util

    M_ARENA_MAX = -8
    mallopt = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt", None)  # glibc only
    if mallopt is not None:
        mallopt(M_ARENA_MAX, 2)
