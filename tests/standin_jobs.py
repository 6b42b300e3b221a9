"""A stand-in for the study's job functions, for the executor tests: it writes the job's output
folders and logs its name, so a graph runs through submitit (its local executor, or SLURM
stand-ins) in a second per job instead of training models. Imported by the job processes, which
find it through PYTHONPATH."""

import os
from pathlib import Path

FAIL_ENV = "CXRSAL_TEST_FAIL_JOB"
LOG_ENV = "CXRSAL_TEST_JOB_LOG"


def work(out, outputs, name):
    if os.environ.get(FAIL_ENV) == name:
        raise RuntimeError(f"stand-in failure of {name}")
    for rel in outputs:
        p = Path(out) / rel
        p.mkdir(parents=True, exist_ok=True)
        (p / "written.txt").write_text(name + "\n")
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(name + "\n")
    return name
