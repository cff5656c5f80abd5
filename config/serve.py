"""Run Chainfin as production does: nginx -> gunicorn, Celery worker, beat; one Ctrl-C stops all.

``make serve`` calls ``python -m config.serve`` with DJANGO_SETTINGS_MODULE set to the
production settings, after ``migrate`` and ``collectstatic``. Everything it writes (the rendered
nginx.conf, pid files, temp files, logs, Prometheus' per-process files) lives in one run
directory (SERVE_DIR, default .serve). Under systemd, run the same commands as separate units:
``python -m config.serve --print-commands`` lists them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# The demo's supervision (foreground process group, staged stop) serves here unchanged.
from config.demo import _foreground, _stop

DEPLOY_DIR = Path(__file__).resolve().parent / "deploy"
NGINX = "/usr/sbin/nginx"  # Debian's package


def render_nginx(
    *,
    listen: str,
    upstream: str,
    run_dir: Path,
    static_root: Path,
    metrics_allow: list[str],
    forwarded_proto: str = "$scheme",
    connections_per_address: int = 64,
) -> str:
    """nginx.conf for these addresses and paths, from config/deploy/*.template."""
    proxy_common = (DEPLOY_DIR / "proxy_common.conf.template").read_text()
    proxy_common = proxy_common.replace("{{forwarded_proto}}", forwarded_proto)
    values = {
        # nginx started as root drops its workers to Debian's www-data; otherwise it runs as
        # whoever started it, and the directive would only draw a warning.
        "user": "user www-data;" if os.geteuid() == 0 else "",
        "run_dir": str(run_dir),
        "log_dir": str(run_dir / "log"),
        "listen": listen,
        "upstream": upstream,
        "static_root": str(static_root),
        "metrics_allow": " ".join(f"allow {network};" for network in metrics_allow),
        "connections_per_address": str(connections_per_address),
        "proxy_common": "\n".join(f"            {line}" for line in proxy_common.splitlines()),
    }
    text = (DEPLOY_DIR / "nginx.conf.template").read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    if "{{" in text:
        raise ValueError("nginx.conf.template has a placeholder render_nginx does not fill")
    return text


def nginx_command(conf: Path, run_dir: Path) -> list[str]:
    """nginx in the foreground on ``conf``; -e keeps it off /var/log before it reads the conf."""
    (run_dir / "log").mkdir(parents=True, exist_ok=True)
    error_log = str(run_dir / "log" / "nginx-error.log")
    return [NGINX, "-p", str(run_dir), "-c", str(conf), "-e", error_log, "-g", "daemon off;"]


def gunicorn_command() -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY_DIR / "gunicorn.conf.py")]


def sequencer_commands(celery: list[str]) -> list[list[str]]:
    """The global log's sequencer (DESIGN 3.4): a worker of its own on the ``log`` queue, where
    the production settings route ``ledger.tasks.log_sequence``, so that a settlement backlog
    never holds checkpoints back. One process: the sequencer is the log's single writer."""
    return [
        [*celery, "worker", "-Q", "log", "--concurrency=1", "-n", "sequencer@%h", "--loglevel=INFO"]
    ]


def _commands(run_dir: Path, conf: Path) -> list[list[str]]:
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    concurrency = os.environ.get("CELERY_WORKER_CONCURRENCY", str(os.cpu_count() or 1))
    return [
        gunicorn_command(),
        nginx_command(conf, run_dir),
        [*celery, "worker", "--loglevel=INFO", f"--concurrency={concurrency}"],
        [*celery, "beat", "--loglevel=INFO", f"--schedule={run_dir}/celerybeat-schedule"],
        *sequencer_commands(celery),
    ]


def _prepare(run_dir: Path, listen: str) -> Path:
    """Write nginx.conf into ``run_dir`` and give every process a fresh metrics directory."""
    from django.conf import settings

    run_dir.mkdir(parents=True, exist_ok=True)
    conf = run_dir / "nginx.conf"
    conf.write_text(
        render_nginx(
            listen=listen,
            upstream=os.environ.get("GUNICORN_BIND", "127.0.0.1:8001"),
            run_dir=run_dir,
            static_root=Path(settings.STATIC_ROOT),
            metrics_allow=os.environ.get("METRICS_ALLOW", "127.0.0.1,::1").split(","),
            # Unset or empty (a shell that expanded the "$" away): what nginx itself saw.
            forwarded_proto=os.environ.get("FORWARDED_PROTO") or "$scheme",
        )
    )
    # Files of processes that died with the last run would otherwise be added to this run's.
    metrics_dir = run_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return conf


def run(run_dir: Path, listen: str) -> int:
    """Start every process and wait; 0 after an interrupt, 1 if one died on its own."""
    conf = _prepare(run_dir, listen)
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    with _foreground():
        # Fixed commands of our own; nothing here comes from a request.
        children = [subprocess.Popen(cmd) for cmd in _commands(run_dir, conf)]  # noqa: S603
        print(f"chainfin: serving on http://{listen}/ (nginx), logs in {run_dir}/log", flush=True)
        while not received and all(child.poll() is None for child in children):
            time.sleep(0.2)
        if not received:
            print("chainfin serve: a process stopped; stopping the others.", file=sys.stderr)
        from_terminal = received[:1] == [signal.SIGINT] and os.isatty(sys.stdin.fileno())
        for child in children:
            if child.poll() is None and not from_terminal:
                # nginx and gunicorn stop gracefully on SIGQUIT/SIGTERM; Celery on SIGTERM.
                child.send_signal(signal.SIGTERM)
        _stop(children)
    return 0 if received else 1


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    import django

    django.setup()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default=os.environ.get("SERVE_LISTEN", "127.0.0.1:8080"))
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("SERVE_DIR", ".serve")))
    parser.add_argument("--render-nginx", type=Path, help="write nginx.conf here and exit")
    parser.add_argument("--print-commands", action="store_true", help="list them and exit")
    args = parser.parse_args()
    run_dir = args.dir.resolve()
    if args.render_nginx:
        args.render_nginx.write_text(_prepare(run_dir, args.listen).read_text())
        return
    if args.print_commands:
        for command in _commands(run_dir, run_dir / "nginx.conf"):
            print(" ".join(command))
        return
    sys.exit(run(run_dir, args.listen))


if __name__ == "__main__":
    main()
