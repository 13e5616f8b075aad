"""`hvg batch`: jobs files, failures that do not stop the batch, re-runs that skip finished jobs, shards, and
two processes under `accelerate launch` doing every job exactly once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hvg_cli.cli.main import app
from hvg_cli.pipeline import read_jobs

runner = CliRunner()


def _write(folder: Path, text: str) -> Path:
    p = folder / "jobs.yaml"
    p.write_text(text)
    return p


def _batch(*args: object):
    return runner.invoke(app, ["batch", *map(str, args)])


def test_jobs_file_expands_a_grid_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    jobs = read_jobs(
        _write(
            tmp_path,
            """
defaults: {resolution: 64, frames: 2, seed: 3}
jobs:
  - animate: {photo: [a.jpg, b.jpg], motion: [wave, idle], orbit: [0, 90], out: "out/{photo}-{motion}-{orbit}.mp4"}
  - pose: {source: wave, out: m.npz, stride: 2}
""",
        )
    )
    assert len(jobs) == 9 and [j.index for j in jobs] == list(range(9))
    first = jobs[0]
    assert first.kind == "animate" and first.paths["photo"] == str(tmp_path / "a.jpg")
    assert first.paths["motion"] == "wave"  # a preset name stays a name
    assert first.paths["out"] == str(tmp_path / "out" / "a-wave-0.mp4")
    assert first.flags == {"resolution": 64, "frames": 2, "seed": 3, "orbit": 0}
    assert {j.paths["out"] for j in jobs[:8]} == {
        str(tmp_path / f"out/{p}-{m}-{o}.mp4") for p in "ab" for m in ("wave", "idle") for o in (0, 90)
    }
    assert jobs[8].flags == {"stride": 2}  # defaults apply only where the command takes them


@pytest.mark.parametrize(
    "text,words",
    [
        ("jobs: []", "non-empty list"),
        ("jobs:\n  - render: {photo: a.jpg}", "must be one of"),
        ("jobs:\n  - animate: {photo: a.jpg, motion: wave, out: o.mp4, colour: red}", "has no option colour"),
        ("jobs:\n  - animate: {photo: a.jpg, out: o.mp4}", "needs motion"),
        ("jobs:\n  - animate: {photo: [a.jpg, b.jpg], motion: wave, out: o.mp4}", "both write"),
        ("jobs:\n  - animate: {photo: a.jpg, motion: wave, out: o.mp4, steps: 0}", "--steps"),
        ("jobs:\n  - animate: {photo: a.jpg, motion: wave, out: o.mp4, orbit: .nan}", "finite"),
        ("jobs:\n  - animate: {photo: a.jpg, motion: wave, out: o.mp4, sampling: fast}", "--sampling"),
        ("jobs: [", "not valid YAML"),
    ],
)
def test_bad_jobs_files_are_one_line_exit_3_before_any_job_runs(tmp_path: Path, text: str, words: str) -> None:
    r = _batch(_write(tmp_path, text), "--cache-dir", tmp_path / "c")
    assert r.exit_code == 3, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.output
    assert not (tmp_path / "o.mp4").exists()


def test_failures_are_reported_the_rest_runs_and_a_rerun_skips_finished_jobs(tmp_path: Path) -> None:
    jobs = _write(
        tmp_path,
        """
jobs:
  - pose: {source: [wave, idle], out: "m/{source}.npz"}
  - pose: {source: missing.mp4, out: m/missing.npz}
  - pose: {source: turn-around, out: m/turn.bvh}
""",
    )
    r = _batch(jobs, "--cache-dir", tmp_path / "c", "--json", "--quiet")
    assert r.exit_code == 7, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row.get("status") for row in rows[:-1]] == ["done", "done", "failed", "done"]
    assert rows[2]["exit_code"] == 3 and "missing.mp4" in rows[2]["message"]
    assert rows[-1]["summary"]["done"] == 3 and rows[-1]["summary"]["failed"] == 1
    assert (tmp_path / "m" / "turn.bvh").read_text().startswith("HIERARCHY")
    before = (tmp_path / "m" / "wave.npz").stat().st_mtime_ns

    # the re-run skips finished jobs, tries the failed one again, and redoes a finished job whose output is gone
    (tmp_path / "m" / "idle.npz").unlink()
    r = _batch(jobs, "--cache-dir", tmp_path / "c", "--json", "--quiet")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row.get("status") for row in rows[:-1]] == ["skipped", "done", "failed", "skipped"]
    assert (tmp_path / "m" / "wave.npz").stat().st_mtime_ns == before


def test_dry_run_lists_jobs_and_what_is_done(tmp_path: Path) -> None:
    jobs = _write(tmp_path, "jobs:\n  - pose: {source: [wave, idle], out: 'm/{source}.npz'}\n")
    assert _batch(jobs, "--cache-dir", tmp_path / "c", "--shard", "0/2", "--quiet").exit_code == 0
    r = _batch(jobs, "--cache-dir", tmp_path / "c", "--dry-run", "--json", "--quiet")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row.get("status") for row in rows[:-1]] == ["skipped", "todo"]
    assert not (tmp_path / "m" / "idle.npz").exists()


@pytest.mark.parametrize("shard", ["2/2", "x", "1/0", "-1/3"])
def test_bad_shard_is_a_usage_error(tmp_path: Path, shard: str) -> None:
    jobs = _write(tmp_path, "jobs:\n  - pose: {source: wave, out: m.npz}\n")
    assert _batch(jobs, "--shard", shard, "--cache-dir", tmp_path / "c").exit_code == 2


TWELVE = """
defaults: {resolution: 48, frames: 2, channels: semantic}
jobs:
  - pose: {source: [wave, idle, dance, walk-in-place], out: "out/{source}.npz"}
  - bonemap: {photo: photo.jpg, motion: [wave, idle, dance, jumping-jacks], orbit: [0, 120], out: "out/b-{motion}-{orbit}"}
"""


def _outputs(folder: Path) -> dict[str, object]:
    """Every output's content: motion arrays, PNG frames' pixels."""
    from PIL import Image

    got: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix == ".npz":
            with np.load(p) as z:
                got[p.name] = (z["poses"].copy(), z["trans"].copy())
        elif p.suffix == ".png":
            got[f"{p.parent.name}/{p.name}"] = np.asarray(Image.open(p))
    return got


def test_two_processes_under_accelerate_do_every_job_once(data_dir: Path, tmp_path: Path) -> None:
    """12 jobs, `accelerate launch` with 2 processes on this CPU machine: each job done by exactly one process,
    the outputs equal to one process running them all."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        shutil.copy(data_dir / "photo_woman_studio.jpg", tmp_path / name / "photo.jpg")
        _write(tmp_path / name, TWELVE)
    r = _batch(tmp_path / "one" / "jobs.yaml", "--cache-dir", tmp_path / "c1", "--quiet")
    assert r.exit_code == 0, r.output

    hvg = shutil.which("hvg", path=str(Path(sys.executable).parent))
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    # accelerate 1.x starts N CPU processes through its torchrun launcher (--multi_gpu: RANK, WORLD_SIZE set;
    # with no GPU each process runs on the CPU); `--cpu --num_processes N` alone starts one process unless an
    # mpirun hostfile is given
    env = {**os.environ, "HVG_CACHE_DIR": str(tmp_path / "c2"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            accelerate,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            hvg,
            "batch",
            str(tmp_path / "two" / "jobs.yaml"),
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    summaries = [row["summary"] for row in rows if "summary" in row]
    assert sorted(s["shard"] for s in summaries) == ["0/2", "1/2"]
    done = sorted(row["index"] for row in rows if row.get("status") == "done")
    assert done == list(range(12)), "every job exactly once"
    one, two = _outputs(tmp_path / "one" / "out"), _outputs(tmp_path / "two" / "out")
    assert sorted(one) == sorted(two) and len(one) == 4 + 8 * 2
    for k in one:
        if isinstance(one[k], tuple):
            for a, b in zip(one[k], two[k]):  # type: ignore[arg-type]
                np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_array_equal(one[k], two[k])
