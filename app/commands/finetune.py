"""`facetwin finetune`: continue a sim-pretrained policy on real data, compared with training from scratch.

    facetwin finetune --policy runs/kan-attn --data real_data --out runs/kan-attn-real

Held-out real episodes score three policies in command space: the pretrained one untouched
(zero-shot), the fine-tuned one (written to --out) and the same model kind trained from scratch on
the same real rows (written to --out/scratch). All numbers land in --out/config.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facetwin.agents.training.config import FINETUNE_LR_FACTOR, FinetuneSettings
from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, run_and_dataset_face_spec


def register(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune a sim-pretrained policy on real data (vs from scratch)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True, type=Path, help="run directory of the sim-pretrained policy")
    p.add_argument("--data", required=True, type=Path, help="real dataset (e.g. from `facetwin real collect`)")
    p.add_argument("--out", required=True, type=Path, help="run directory for the fine-tuned policy")
    d = FinetuneSettings()
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    p.add_argument("--lr", type=float, default=d.lr,
                   help=f"fine-tuning learning rate (default: {FINETUNE_LR_FACTOR} x the kind's)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"epochs without improvement before stopping (default {d.patience})")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"share of real episodes held out for the test (default {d.val_fraction})")
    p.add_argument("--max-train-samples", type=int, default=d.max_train_samples,
                   help="fit on at most this many real rows (both models)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: CUDA when available)")
    p.add_argument("--threads", type=int, default=None,
                   help="PyTorch CPU threads (default: PyTorch's choice; 1 is quickest on a busy shared machine)")
    add_face_option(p, default="the face the policy was trained for; the data must be recorded on it")
    p.set_defaults(func=run)


def run(args) -> int:
    from facetwin.agents.training.checkpoint import RunError
    from facetwin.agents.training.finetune import finetune_from_dataset
    from facetwin.dataset import DatasetError

    if not args.data.is_dir():
        raise CLIError(f"no dataset directory at {args.data}")
    if args.epochs < 1 or args.patience < 1 or not 0.0 < args.val_fraction < 1.0:
        raise CLIError("--epochs and --patience must be at least 1, --val-fraction in (0, 1)")
    spec = run_and_dataset_face_spec(args, args.policy, args.data)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    settings = FinetuneSettings(epochs=args.epochs, lr=args.lr, patience=args.patience, val_fraction=args.val_fraction,
                                max_train_samples=args.max_train_samples, seed=args.seed, device=args.device)
    try:
        result = finetune_from_dataset(args.policy, args.data, settings, out_dir=args.out, spec=spec)
    except (RunError, DatasetError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    s = result.summary()
    mae, mse = s["test_command_mae"], s["test_command_mse"]
    print(f"real rows: {result.n_train} fit, {result.n_stop} early-stopping, {result.n_test} test "
          f"(episodes {result.test_episodes})")
    for name in ("zero_shot", "finetuned", "scratch"):
        print(f"  {name:10s} test command MAE {mae[name]:.4f}  MSE {mse[name]:.5f}")
    verdict = "beats" if mae["finetuned"] < mae["scratch"] else "does not beat"
    print(f"fine-tuned {verdict} from-scratch on held-out real episodes; runs: {result.run_dir} "
          f"(scratch: {result.run_dir / 'scratch'})")
    print(json.dumps(s))
    return 0
