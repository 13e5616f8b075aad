"""`hvg_cli.train.loop.train` from the command line, for tests that run it under `accelerate launch`.

usage: train_launch.py WEIGHTS DATA OUT KEY=VALUE...   (values: int, float, or text)
"""

import os
import sys

import torch

torch.set_num_threads(1)

from hvg_cli.train.loop import TrainSettings, train  # noqa: E402


def value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


weights, data, out, *pairs = sys.argv[1:]
extra = {k: value(v) for k, v in (p.split("=", 1) for p in pairs)}
result = train(TrainSettings(weights=weights, data=data, out=out, **extra))
if os.environ.get("RANK", "0") == "0":  # one line, from the main process
    print(f"global_batch={result.global_batch} loss={result.final_loss:.6f}", flush=True)
