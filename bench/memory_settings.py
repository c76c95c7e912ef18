"""The demo's settings for :mod:`bench.memory`: no admission cap refuses its loopback clients,
the process may hold as many sockets as the hard limit allows, and, with
``BENCH_TRACEMALLOC=<frames>``, SIGUSR1 writes a tracemalloc snapshot to
``BENCH_SNAPSHOT`` (the settings module is imported inside daphne, before it serves)."""

import os
import resource
import signal
import tracemalloc

from project.settings import *  # noqa: F403

ZMQFEED = {"MAX_CONNECTIONS": 0, "MAX_CONNECTIONS_PER_USER": 0, "CONNECT_RATE": 0.0}

_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))

if os.environ.get("BENCH_TRACEMALLOC"):
    tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC"]))

    def _snapshot(signum: int, frame: object) -> None:
        path = os.environ["BENCH_SNAPSHOT"]
        tracemalloc.take_snapshot().dump(path + ".tmp")
        os.replace(path + ".tmp", path)

    signal.signal(signal.SIGUSR1, _snapshot)

if os.environ.get("BENCH_CENSUS"):
    import gc
    import json
    import sys
    from collections import Counter

    def _census(signum: int, frame: object) -> None:
        """Live objects by type, and the instance dicts of daphne's protocols."""
        gc.collect()
        objects = gc.get_objects()
        kinds = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
        dicts = [
            (len(vars(o)), sys.getsizeof(vars(o)))
            for o in objects
            if type(o).__name__ == "WebSocketProtocol" and hasattr(o, "__dict__")
        ][:3]
        detail: Counter = Counter()
        for o in objects:
            kind = type(o).__name__
            if kind == "coroutine":
                detail[f"coroutine {o.cr_code.co_qualname}"] += 1
            elif kind == "function":
                detail[f"function {o.__module__}.{o.__qualname__}"] += 1
            elif kind == "method":
                detail[f"method {type(o.__self__).__name__}.{o.__func__.__name__}"] += 1
            elif kind == "Task":
                detail[f"task {o.get_coro().__qualname__}"] += 1
        doc = {
            "types": kinds.most_common(60),
            "detail": detail.most_common(60),
            "protocol_dicts": dicts,
        }
        path = os.environ["BENCH_CENSUS"]
        with open(path + ".tmp", "w") as out:
            json.dump(doc, out)
        os.replace(path + ".tmp", path)

    signal.signal(signal.SIGUSR2, _census)
