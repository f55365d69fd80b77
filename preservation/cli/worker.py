"""`preserve worker`: claim and run jobs from the catalog."""

from __future__ import annotations

import click

from preservation.errors import ConfigError
from preservation.metrics import WorkerMetrics
from preservation.units import parse_listen
from preservation.runtime.handlers import default_registry
from preservation.runtime.handler_registry import PLUGIN_ENV
from preservation.runtime.worker import Worker, WorkerOptions

from .common import emit_json, json_option, repo
from .service import configure_logging, hangup_signal, stop_signals


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Jobs run at the same time (threads).")
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@click.option("--max-jobs", type=click.IntRange(1), default=None, help="Exit after claiming this many jobs.")
@click.option("--idle-exit", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Exit after this long with nothing to do.")
@click.option("--kind", "kinds", multiple=True, help="Only claim jobs of this kind (repeatable).")
@click.option("--lease", type=click.FloatRange(0.5), default=300, show_default=True, envvar="PRESERVE_LEASE_SECONDS",
              metavar="SECONDS", help="Lease per job, renewed every third of it while the job runs.")
@click.option("--poll", type=click.FloatRange(0.01), default=2, show_default=True, envvar="PRESERVE_POLL_SECONDS",
              metavar="SECONDS", help="Pause between looks at an empty queue.")
@click.option("--retry-base", type=click.FloatRange(0), default=30, show_default=True,
              envvar="PRESERVE_RETRY_BASE_SECONDS", metavar="SECONDS",
              help="First retry delay; doubles with each attempt (with jitter), at most an hour.")
@click.option("--grace", type=click.FloatRange(0), default=30, show_default=True, envvar="PRESERVE_GRACE_SECONDS",
              metavar="SECONDS", help="On SIGTERM, how long running jobs may finish before they are released.")
@click.option("--handlers", "plugins", default=None, envvar=PLUGIN_ENV, metavar="MODULE:FUNCTION,…",
              help=f"Register more job kinds (env {PLUGIN_ENV}).")
@click.option("--metrics-listen", default=None, envvar="PRESERVE_WORKER_METRICS", metavar="HOST:PORT",
              help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics (one port per worker process).")
@click.option("--verbose", "-v", is_flag=True)
@json_option
def worker(concurrency, once, max_jobs, idle_exit, kinds, lease, poll, retry_base, grace, plugins, metrics_listen,
           verbose, as_json) -> None:
    """Claim jobs from the catalog and run them until stopped (SIGTERM/SIGINT: finish, then exit 0).

    SIGHUP, or a change of the policy file, reloads the policy without a restart (a bad one is refused).
    """
    configure_logging(verbose)
    options = WorkerOptions(
        concurrency=concurrency, once=once, max_jobs=max_jobs, idle_exit=idle_exit, lease_seconds=lease,
        poll_seconds=poll, retry_base_seconds=retry_base, grace_seconds=grace, kinds=tuple(kinds) or None,
    )
    metrics = server = None
    if metrics_listen is not None:
        host, port = parse_metrics_listen(metrics_listen)
        metrics = WorkerMetrics()
        try:
            server = metrics.serve(host, port)
        except OSError as e:
            raise ConfigError(f"--metrics-listen {metrics_listen!r}: cannot listen there ({e.strerror})") from e
    running = Worker(repo(), default_registry(plugins), options, metrics=metrics)
    try:
        with stop_signals(running.stop, lambda: running.stop(release_now=True)), \
                hangup_signal(running.reload_policy):
            report = running.run()
    finally:
        if server is not None:
            server.shutdown()
    if as_json:
        emit_json(report.to_dict())


def parse_metrics_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT``) with a port of ASCII digits in 1-65535; raises ConfigError."""
    try:
        return parse_listen(text)
    except ValueError as e:
        raise ConfigError(f"--metrics-listen {text!r}: use HOST:PORT with a port in 1-65535, e.g. 127.0.0.1:9101") from e