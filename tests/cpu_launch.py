"""Run a test script under `accelerate launch` as several CPU processes (gloo), the way multi-GPU users launch."""
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    "A free TCP port on 127.0.0.1 for the rendezvous."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def accelerate_launch(script: str, # file under tests/
                      *args: str, # the script's own arguments
                      processes: int = 2,
                      config_file: Path | None = None, # an Accelerate config instead of --multi_gpu flags
                      timeout: int = 300,
                      check: bool = True, # assert a zero exit code (showing the output tails otherwise)
                     ) -> subprocess.CompletedProcess:
    "Launch `tests/script` on `processes` CPU processes; returns the finished process."
    launch = ["--config_file", str(config_file)] if config_file else [
        "--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *launch, "--num_processes", str(processes),
           "--main_process_port", str(free_port()), str(ROOT / "tests" / script), *map(str, args)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check: assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p
