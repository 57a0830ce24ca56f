"""The no-op workload on Celery 5 + RabbitMQ, for the comparison in saltant-bench.

A worker (prefork, --concurrency C) runs a task that runs the same subprocess saltant's
no-op instances run (`true`) and returns its exit code; results are stored in PostgreSQL
(Celery's database backend), as saltant stores its outcomes. Prints one JSON line.

usage: bench_celery.py BROKER_URL BACKEND_URL N CONCURRENCY
(the worker, which imports this module, gets the URLs through the environment)
"""

import json
import os
import subprocess
import sys
import time

from celery import Celery

if __name__ == "__main__":
    os.environ["BENCH_BROKER"], os.environ["BENCH_BACKEND"] = sys.argv[1], sys.argv[2]
app = Celery("bench_celery", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_BACKEND"])
app.conf.update(
    task_acks_late=True,  # like saltant: a task is acknowledged after it ran
    worker_prefetch_multiplier=4,
    result_extended=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop():
    return subprocess.run(["true"]).returncode


def main():
    n, concurrency = int(sys.argv[3]), int(sys.argv[4])
    here = os.path.dirname(os.path.abspath(__file__))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench_celery", "worker", "--loglevel", "WARNING",
         "--concurrency", str(concurrency), "--pool", "prefork", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        cwd=here, env={**os.environ, "PYTHONPATH": here},
        stdout=subprocess.DEVNULL,
    )
    try:
        # Wait for the worker.
        deadline = time.time() + 120
        while not app.control.ping(timeout=0.5):
            if time.time() > deadline or worker.poll() is not None:
                raise SystemExit("celery worker did not start")
        noop.delay().get(timeout=60)  # warm
        start = time.time()
        results = [noop.delay() for _ in range(n)]
        submitted = time.time() - start
        codes = [r.get(timeout=600) for r in results]
        total = time.time() - start
        assert all(c == 0 for c in codes), "a task failed"
        print(json.dumps({"n": n, "concurrency": concurrency, "submit_s": submitted,
                          "total_s": total, "per_sec": n / total}))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


if __name__ == "__main__":
    main()
