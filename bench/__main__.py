"""``make bench``: the figures the closing notes report.

For this assistant and, on the same machine in the same run, a ``rasa init``
bot: training time (empty cache), held-out NLU scores, REST latency and
throughput at 1 and 8 concurrent conversations, and server RSS after load.
Then the staff console with 100,000 conversations (bench/console.py), the
production shape: SQLite, PostgreSQL + Redis, two Rasa processes (bench/scale.py),
and the run command's supervisor: its RSS and each process's time from SIGKILL to
answering again (bench/restarts.py).
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

from bench.console import console_figures, print_console
from bench.hardening import hardening_figures, print_hardening
from bench.load import BENCH_ENV, LoadResult, run_load
from bench.memory import rss_mb
from bench.restarts import print_restarts, restart_figures
from bench.safety import print_safety, safety_figures
from bench.scale import print_scale, scale_figures
from clinic_assistant import settings
from clinic_assistant.evaluation import evaluate_nlu
from clinic_assistant.processes import (
    Service,
    assistant,
    free_port,
    process_environment,
    start,
    wait_until_healthy,
)

WORK = settings.VAR_DIR / "bench"
TURNS = 24
CONCURRENCY = (1, 8)


def timed(command: list, cwd: Path, env: Dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def train_ours() -> tuple:
    out = WORK / "clinic"
    shutil.rmtree(out, ignore_errors=True)
    env = process_environment({"RASA_CACHE_DIRECTORY": str(out / "cache")})
    command = [sys.executable, "-m", "rasa", "train", "--out", str(out), "--fixed-model-name", "clinic"]
    seconds = timed(command, settings.PROJECT_DIR, env)
    return out / "clinic.tar.gz", seconds


def train_rasa_init() -> tuple:
    project = WORK / "rasa-init"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    env = process_environment({"RASA_CACHE_DIRECTORY": str(project / ".rasa" / "cache")})
    seconds = timed([sys.executable, "-m", "rasa", "init", "--no-prompt", "--init-dir", str(project)], project, env)
    return project, next((project / "models").glob("*.tar.gz")), seconds


def load_figures(base_url: str, pid: int) -> dict:
    results: Dict[str, LoadResult] = {}
    for concurrency in CONCURRENCY:
        results[str(concurrency)] = asyncio.run(run_load(base_url, concurrency, TURNS))
    return {
        "load": {k: {**vars(v), "throughput": v.throughput} for k, v in results.items()},
        "rss_mb": rss_mb(pid),
    }


def bench_ours(model: Path) -> dict:
    rasa_port, actions_port = free_port(), free_port()
    env = {
        **BENCH_ENV,
        "TRACKER_URL": f"sqlite:///{WORK / 'clinic-tracker.db'}",
        "CLINIC_DATABASE_URL": f"sqlite:///{WORK / 'clinic.db'}",
        "CLINIC_RECORD_SPOOL": str(WORK / "unstored-records.jsonl"),
    }
    with assistant(model, rasa_port, actions_port, extra_env=env, log_dir=WORK) as services:
        figures = load_figures(f"http://127.0.0.1:{rasa_port}", services["rasa"].process.pid)
        figures["actions_rss_mb"] = rss_mb(services["actions"].process.pid)
    return figures


def bench_rasa_init(project: Path, model: Path) -> dict:
    port = free_port()
    command = [sys.executable, "-m", "rasa", "run", "--model", str(model), "--port", str(port), "-i", "127.0.0.1"]
    env = process_environment()
    server: Service = start("rasa init bot", command, f"http://127.0.0.1:{port}/webhooks/rest/", env, WORK / "init.log")
    try:
        wait_until_healthy(server)
        return load_figures(f"http://127.0.0.1:{port}", server.process.pid)
    finally:
        server.stop()


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    model, train_seconds = train_ours()
    scores = evaluate_nlu(model, WORK / "nlu-report")
    safety = safety_figures(model)
    project, init_model, init_train_seconds = train_rasa_init()
    ours = bench_ours(model)
    baseline = bench_rasa_init(project, init_model)
    console = console_figures()
    scale = scale_figures(model)
    restarts = restart_figures()
    hardening = hardening_figures(model)
    report = {
        "cpu_count": os.cpu_count(),
        "nlu": {k: v for k, v in vars(scores).items() if k != "report_dir"},
        "safety": safety,
        "training_seconds": {"clinic": train_seconds, "rasa_init": init_train_seconds},
        "clinic": ours,
        "rasa_init": baseline,
        "console": console,
        "scale": scale,
        "restarts": restarts,
        "hardening": hardening,
    }
    (WORK / "results.json").write_text(json.dumps(report, indent=2))
    print_report(report)


def print_report(report: dict) -> None:
    nlu = report["nlu"]
    print(f"Held-out NLU: intent macro-F1 {nlu['intent_macro_f1']:.3f}, intent accuracy {nlu['intent_accuracy']:.3f}, "
          f"response selection accuracy {nlu['response_accuracy']:.3f}")
    print_safety(report["safety"])
    t = report["training_seconds"]
    print(f"Training from an empty cache: clinic {t['clinic']:.0f} s, rasa init bot {t['rasa_init']:.0f} s")
    for name in ("clinic", "rasa_init"):
        figures = report[name]
        extra = f", action server {figures['actions_rss_mb']:.0f} MB" if "actions_rss_mb" in figures else ""
        print(f"{name}: Rasa server RSS after load {figures['rss_mb']:.0f} MB{extra}")
        for concurrency, row in figures["load"].items():
            print(f"  {concurrency:>2} conversations: {row['throughput']:.1f} req/s, p50 {row['p50_ms']:.0f} ms, "
                  f"p95 {row['p95_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, errors {row['errors']}/{row['requests']}")
    for concurrency in report["clinic"]["load"]:
        ours = report["clinic"]["load"][concurrency]["throughput"]
        base = report["rasa_init"]["load"][concurrency]["throughput"]
        print(f"Throughput ratio clinic / rasa init at {concurrency}: {ours / base:.2f}x")
    print_console(report["console"])
    print_scale(report["scale"])
    print_restarts(report["restarts"])
    print_hardening(report["hardening"])


if __name__ == "__main__":
    main()
