"""`hvg batch JOBS.yaml`: many animate / bonemap / pose jobs from one file, in one process or split over many.

A jobs file:

    defaults:                  # any job option, for every job that takes it
      resolution: 256
    jobs:
      - pose: {source: dance.mp4, out: motions/dance.npz}
      - animate:
          photo: [photos/a.jpg, photos/b.jpg]     # lists expand into a grid: photos × motions × cameras
          motion: [wave, dance.mp4]
          camera: [orbit-360, sv3d-21]
          out: "out/{photo}-{motion}-{camera}.mp4"
      - bonemap: {photo: photos/a.jpg, motion: wave, orbit: 90, out: bones/a.mp4}

Each job takes the options of its command (names as on the command line, `no-align` or `no_align`); relative paths
are relative to the jobs file. `out` may name `{photo}`, `{motion}`, `{camera}`, `{orbit}`, `{source}` (file stems or
values) and `{index}`. A job is done when its outputs exist and the record of its last success (stage `batch` of
the cache: the job's options, its inputs' content hashes and its outputs' sizes) matches; a re-run skips done
jobs and redoes failed ones. Jobs share the stage cache, so jobs with a common photo or motion compute its
subject or pose once.

Processes: `--shard i/n` runs every n-th job starting at i (a SLURM or Kubernetes array task); under
`accelerate launch` (RANK / WORLD_SIZE / LOCAL_RANK set) the jobs split over the processes by themselves and each
diffusion job runs on its process's GPU. Processes share the cache safely (a lock per cache entry).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvg_cli.core.cache import StageCache, canonical_json, file_hash
from hvg_cli.core.errors import BadInput, HvgError, UsageError
from hvg_cli.core.progress import SILENT, Reporter
from hvg_cli.core.settings import (
    ANIMATE_FLAGS,
    BONEMAP_FLAGS,
    POSE_FLAGS,
    animate_from_flags,
    bonemap_from_flags,
    pose_from_flags,
)
from hvg_cli.pipeline import stages

KINDS = ("animate", "bonemap", "pose")
_PATHS = {  # the non-flag keys of each kind: (required inputs, optional inputs, outputs)
    "animate": (("photo", "motion"), ("weights",), ("out",)),
    "bonemap": (("photo", "motion"), (), ("out", "export")),
    "pose": (("source",), (), ("out", "preview")),
}
_FLAGS = {"animate": ANIMATE_FLAGS, "bonemap": BONEMAP_FLAGS, "pose": POSE_FLAGS}
_GRID = {
    "animate": ("photo", "motion", "camera", "orbit"),
    "bonemap": ("photo", "motion", "camera", "orbit"),
    "pose": ("source",),
}


@dataclass(frozen=True)
class BatchJob:
    """One job of a jobs file, expanded and with its paths resolved."""

    index: int  # position in the expanded job list (0-based): what --shard splits
    kind: str  # "animate" | "bonemap" | "pose"
    paths: dict[str, str]  # photo / motion / source / weights / out / export / preview -> path or preset name
    flags: dict[str, Any]  # the command's options (python names)

    @property
    def outputs(self) -> list[Path]:
        return [Path(self.paths[k]) for k in _PATHS[self.kind][2] if self.paths.get(k)]

    @property
    def label(self) -> str:
        names = [Path(self.paths[k]).name for k in ("photo", "motion", "source") if k in self.paths]
        return f"{self.kind} {' + '.join(names)} -> {self.paths['out']}"

    def as_dict(self) -> dict:
        return {"index": self.index, "kind": self.kind, **self.paths, "options": self.flags}


@dataclass(frozen=True)
class JobResult:
    job: BatchJob
    status: str  # "done" | "skipped" (finished before) | "failed" | "todo" (dry run)
    exit_code: int = 0
    message: str = ""
    seconds: float = 0.0
    stages_cached: int = 0  # stage results this job took from the cache
    stages_computed: int = 0

    def as_dict(self) -> dict:
        return {
            **self.job.as_dict(),
            "status": self.status,
            "exit_code": self.exit_code,
            "message": self.message,
            "seconds": round(self.seconds, 3),
            "stages_cached": self.stages_cached,
            "stages_computed": self.stages_computed,
        }


@dataclass(frozen=True)
class BatchSummary:
    jobs_file: str
    total: int  # jobs in the file (after expansion)
    shard: tuple[int, int]  # (i, n): this process ran jobs with index % n == i
    results: tuple[JobResult, ...] = field(default_factory=tuple)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def as_dict(self) -> dict:
        return {
            "jobs_file": self.jobs_file,
            "total": self.total,
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "ran": len(self.results),
            "done": self.count("done"),
            "skipped": self.count("skipped"),
            "failed": self.failed,
            "todo": self.count("todo"),
            "stages_cached": sum(r.stages_cached for r in self.results),
            "stages_computed": sum(r.stages_computed for r in self.results),
        }


# --- reading a jobs file --------------------------------------------------------------------------------------------
def _norm(key: object) -> str:
    return str(key).strip().lstrip("-").replace("-", "_")


def _stem(value: object) -> str:
    text = str(value)
    return Path(text).stem if ("/" in text or "." in text) else text


def read_jobs(jobs_file: Path) -> list[BatchJob]:
    """The expanded, checked job list of a jobs file (BadInput naming the file and the job for anything wrong)."""
    import yaml

    from hvg_cli.io import check_input_file

    jobs_file = Path(jobs_file)
    check_input_file(jobs_file, "a jobs file", "a YAML jobs file (see `hvg batch --help`)")
    try:
        data = yaml.safe_load(jobs_file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise BadInput(
            f"{jobs_file}: not valid YAML ({str(e).splitlines()[0]})", "check the file's indentation"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list) or not data["jobs"]:
        raise BadInput(f"{jobs_file}: needs a non-empty list under `jobs:`", "see `hvg batch --help` for the layout")
    unknown = sorted(set(data) - {"jobs", "defaults"})
    if unknown:
        raise BadInput(f"{jobs_file}: unknown top-level key(s) {', '.join(unknown)}", "allowed: defaults, jobs")
    defaults = {_norm(k): v for k, v in (data.get("defaults") or {}).items()}
    base = jobs_file.resolve().parent
    out: list[BatchJob] = []
    for n, item in enumerate(data["jobs"], 1):
        where = f"{jobs_file}: job {n}"
        if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in KINDS:
            raise BadInput(f"{where} must be one of `animate:`, `bonemap:`, `pose:` with its options")
        kind, options = next(iter(item.items()))
        if not isinstance(options, dict):
            raise BadInput(f"{where}: the options of `{kind}:` must be a mapping")
        required, optional, outputs = _PATHS[kind]
        allowed = set(required) | set(optional) | set(outputs) | set(_FLAGS[kind])
        merged = {k: v for k, v in defaults.items() if k in allowed}
        merged.update({_norm(k): v for k, v in options.items()})
        bad = sorted(set(merged) - allowed)
        if bad:
            raise BadInput(
                f"{where}: `{kind}` has no option {', '.join(bad)}", f"options: {', '.join(sorted(allowed))}"
            )
        missing = [k for k in required + ("out",) if merged.get(k) in (None, "", [])]
        if missing:
            raise BadInput(f"{where}: `{kind}` needs {', '.join(missing)}")
        axes = [k for k in _GRID[kind] if isinstance(merged.get(k), list)]
        for combo in itertools.product(*(merged[k] for k in axes)):
            opts = {**merged, **dict(zip(axes, combo))}
            names = {k: _stem(opts[k]) for k in _GRID[kind] if opts.get(k) is not None}
            try:
                opts["out"] = str(opts["out"]).format(index=len(out), **{k: names.get(k, "") for k in _GRID[kind]})
            except (KeyError, IndexError, ValueError) as e:
                raise BadInput(
                    f"{where}: `out` names an unknown field {e}",
                    "use {photo}, {motion}, {camera}, {orbit}, {source} or {index}",
                ) from None
            paths = {}
            for k in required + optional + outputs:
                if opts.get(k) is None:
                    continue
                v = str(opts[k])
                # a motion preset name ("wave") stays a name unless a file of that name sits beside the jobs file
                is_preset = k in ("motion", "source") and "/" not in v and "." not in v and not (base / v).exists()
                paths[k] = v if is_preset or Path(v).is_absolute() else str(base / v)
            for k in ("body_model",):
                if opts.get(k):
                    opts[k] = str(base / str(opts[k])) if not Path(str(opts[k])).is_absolute() else str(opts[k])
            if opts.get("camera") and str(opts["camera"]).endswith((".yaml", ".yml", ".json")):
                opts["camera"] = str(base / str(opts["camera"]))
            flags = {k: v for k, v in opts.items() if k in _FLAGS[kind]}
            out.append(BatchJob(index=len(out), kind=kind, paths=paths, flags=flags))
    seen: dict[str, int] = {}
    for job in out:
        for o in job.outputs:
            key = str(o.resolve())
            if key in seen:
                raise BadInput(
                    f"{jobs_file}: jobs {seen[key] + 1} and {job.index + 1} both write {o}",
                    "put {photo}, {motion}, {camera} or {index} in `out`",
                )
            seen[key] = job.index
    for job in out:  # every job's options are checked before the first job runs
        _settings(job)
    return out


def _settings(job: BatchJob):
    try:
        if job.kind == "animate":
            return animate_from_flags(**job.flags)
        if job.kind == "bonemap":
            return bonemap_from_flags(**job.flags)
        return pose_from_flags(**job.flags)
    except UsageError as e:
        raise BadInput(f"job {job.index + 1} ({job.label}): {e.message}", e.hint) from None


# --- which jobs are this process's, and which are done -------------------------------------------------------------
def process_shard(shard: str | None = None) -> tuple[int, int]:
    """(i, n) from `--shard i/n`; else this process's rank and count from the launcher (torchrun / `accelerate
    launch`: RANK, WORLD_SIZE; mpirun: OMPI_COMM_WORLD_*, PMI_*); else (0, 1)."""
    if shard is not None:
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            raise UsageError(f"--shard {shard!r} is not i/n", "for example --shard 0/4 (the first of four)") from None
        if not (n >= 1 and 0 <= i < n):
            raise UsageError(f"--shard {shard}: need 0 <= i < n")
        return i, n
    for rank, size in (
        ("RANK", "WORLD_SIZE"),
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
        ("PMI_RANK", "PMI_SIZE"),
    ):
        if os.environ.get(size, "").isdigit() and os.environ.get(rank, "").isdigit():
            i, n = int(os.environ[rank]), int(os.environ[size])
            if n > 1 and 0 <= i < n:
                return i, n
    return 0, 1


def _job_key(job: BatchJob):
    """What identifies a job's finished outputs: its kind, options, output paths and its input files' bytes."""
    hashes = {}
    for k, v in job.paths.items():
        p = Path(v)
        if k not in _PATHS[job.kind][2] and p.is_file():
            hashes[k] = file_hash(p)
    return stages.stage_key("batch", job.kind, canonical_json(job.flags), canonical_json(job.paths), hashes)


def _outputs_state(job: BatchJob) -> list[list]:
    """[path, size] of every output file (all files of a PNG folder), in order."""
    state = []
    for o in job.outputs:
        if o.is_dir():
            state += [[str(p), p.stat().st_size] for p in sorted(o.iterdir()) if p.is_file()]
        elif o.is_file():
            state.append([str(o), o.stat().st_size])
        else:
            state.append([str(o), None])
    return state


def is_done(job: BatchJob, cache: StageCache) -> bool:
    """The job's last success is recorded and its outputs are still as it left them."""
    try:
        hit = cache.path(_job_key(job))
        record = hit / "outputs.json"
        return (hit / ".complete").exists() and json.loads(record.read_text()) == _outputs_state(job)
    except (OSError, ValueError):
        return False


def _record_done(job: BatchJob, cache: StageCache) -> None:
    key = _job_key(job)
    cache.clear_entry(key)  # an older record of the same job (its outputs were replaced since)

    def produce(folder: Path) -> None:
        (folder / "outputs.json").write_text(json.dumps(_outputs_state(job)))

    cache.get_or_compute(key, produce)


# --- running ----------------------------------------------------------------------------------------------------------
def run_job(job: BatchJob, cache: StageCache, progress: Reporter = SILENT) -> None:
    """Run one job as its command would (the same library call with the same settings)."""
    from hvg_cli.pipeline.jobs import animate_job, bonemap_job
    from hvg_cli.pipeline.motion import pose_job

    settings = _settings(job)
    p = job.paths
    if job.kind == "animate":
        local = os.environ.get("LOCAL_RANK")
        if local is not None and settings.device == "auto":  # one GPU per process under accelerate launch
            import torch

            if torch.cuda.is_available():
                settings = dataclasses.replace(settings, device=f"cuda:{int(local) % torch.cuda.device_count()}")
        animate_job(
            Path(p["photo"]),
            p["motion"],
            settings,
            Path(p["out"]),
            weights=Path(p["weights"]) if p.get("weights") else None,
            cache=cache,
            progress=progress,
        )
    elif job.kind == "bonemap":
        bonemap_job(
            Path(p["photo"]),
            p["motion"],
            settings,
            Path(p["out"]),
            export=Path(p["export"]) if p.get("export") else None,
            cache=cache,
            progress=progress,
        )
    else:
        pose_job(
            p["source"],
            Path(p["out"]),
            settings,
            preview_path=Path(p["preview"]) if p.get("preview") else None,
            cache=cache,
            progress=progress,
        )


def run_batch(
    jobs_file: Path,
    shard: str | None = None,
    dry_run: bool = False,
    cache: StageCache | None = None,
    progress: Reporter = SILENT,
    on_result: Callable[[JobResult], None] | None = None,
) -> BatchSummary:
    """`hvg batch`: run this process's share of the jobs in order; a failing job is reported and the others go on.

    on_result(result) is called after every job (the CLI prints a line per job). The summary's `failed` says
    whether any job failed; KeyboardInterrupt stops the batch (finished jobs stay recorded).
    """
    cache = cache or StageCache()
    jobs = read_jobs(Path(jobs_file))
    i, n = process_shard(shard)
    mine = [j for j in jobs if j.index % n == i]
    results: list[JobResult] = []
    with progress.task("jobs", total=len(mine), unit="jobs") as bar:
        for job in mine:
            hits0, computed0 = cache.hits, cache.computed
            t0 = time.perf_counter()
            if is_done(job, cache):
                result = JobResult(job, "skipped")
            elif dry_run:
                result = JobResult(job, "todo")
            else:
                try:
                    run_job(job, cache, progress)
                    result = JobResult(
                        job, "done", stages_cached=cache.hits - hits0, stages_computed=cache.computed - computed0
                    )
                    _record_done(job, cache)
                except HvgError as e:
                    result = JobResult(job, "failed", e.exit_code, str(e))
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as e:  # a bug in hvg: reported like the CLI does, the batch goes on
                    result = JobResult(job, "failed", 1, f"internal error: {type(e).__name__}: {e}")
            if result.status != "done":
                result = dataclasses.replace(
                    result, stages_cached=cache.hits - hits0, stages_computed=cache.computed - computed0
                )
            result = dataclasses.replace(result, seconds=time.perf_counter() - t0)
            results.append(result)
            if on_result is not None:
                on_result(result)
            bar.advance(1)
    return BatchSummary(jobs_file=str(jobs_file), total=len(jobs), shard=(i, n), results=tuple(results))
