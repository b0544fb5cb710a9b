"""`facetwin train`: fit a policy (expression -> servo commands) on a recorded dataset."""

from __future__ import annotations

import math
from pathlib import Path

# the defaults live in these dataclasses and names (torch-free); the parser reads them, never restates them
from facetwin.agents.policies.names import CLOSED_FORM_KINDS, MODEL_KINDS, NEURAL_KINDS
from facetwin.agents.training.config import (FORWARD_MODELS, OBJECTIVES, AggregationSettings, ExpressionSettings, FitSettings,
                                             TrainConfig)
from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, dataset_face_spec

# auto: the expression objective for the gradient-trained kinds (it measured better in the closed loop on
# human faces, for kan-attn and mlp alike), supervised for the closed-form ones, which have no other
OBJECTIVE_CHOICES = ("auto", *OBJECTIVES)


def register(subparsers) -> None:
    config, fit, expression, aggregation = TrainConfig(), FitSettings(), ExpressionSettings(), AggregationSettings()
    p = subparsers.add_parser("train", help="train a policy from a dataset (expression -> the face's servo commands)",
                              description="Train a policy mapping target expressions to servo commands.")
    p.add_argument("--data", required=True, type=Path, help="dataset directory (LeRobot-v3 style, from facetwin)")
    p.add_argument("--model", default=config.model, choices=MODEL_KINDS, help="policy kind (default %(default)s)")
    p.add_argument("--out", required=True, type=Path, help="run directory to write (checkpoint, config.json, loss.png)")
    p.add_argument("--epochs", type=int, default=fit.epochs, help="epochs of the supervised fit (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=fit.batch_size, help="minibatch size (default %(default)s)")
    p.add_argument("--lr", type=float, default=fit.lr, help="learning rate (default: per model kind)")
    p.add_argument("--seed", type=int, default=fit.seed, help="seed of every pass (default %(default)s)")
    p.add_argument("--device", default=fit.device, help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--max-samples", type=int, default=config.max_samples,
                   help="train on a random subset of this many frames")
    p.add_argument("--val-fraction", type=float, default=config.val_fraction,
                   help="share held out for validation (whole episodes; default %(default)s)")
    p.add_argument("--patience", type=int, default=fit.patience,
                   help="epochs without improvement before stopping (default %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="PyTorch CPU threads (default: PyTorch's choice; 1 is quickest on a busy shared machine)")
    p.add_argument("--objective", default="auto", choices=OBJECTIVE_CHOICES,
                   help="supervised: fit commands; expression: then fit a forward model and fine-tune the policy "
                        "through it so f(policy(e)) ~ e, on targets reaching past the data (default auto: "
                        f"expression for {'/'.join(NEURAL_KINDS)}, supervised for {'/'.join(CLOSED_FORM_KINDS)})")
    p.add_argument("--expression-epochs", type=int, default=expression.epochs,
                   help="epochs of the expression pass (default %(default)s)")
    p.add_argument("--anchor", type=float, default=expression.anchor,
                   help="weight of the command loss on real pairs during the expression pass (holds the policy near "
                        "recorded commands; useful when the dataset has no landmarks and the forward model is a direct "
                        "fit; default %(default)s)")
    p.add_argument("--forward-model", default=config.forward_model, choices=FORWARD_MODELS,
                   help="expression objective: the forward model the policy is tuned through; landmark: the "
                        "landmark-structured teacher and its direct student, fitted on the dataset's landmarks; "
                        "direct: the direct student alone (the recipe that won on pixel labels, docs/study.md); "
                        "default %(default)s")
    p.add_argument("--forward", type=Path, metavar="RUN_DIR",
                   help="use the forward model of an earlier expression-objective run on the same dataset instead of "
                        "fitting one (its forward.safetensors)")
    p.add_argument("--landmarker", metavar="PATH",
                   help="face_landmarker.task, whose blendshape network the forward model ends in "
                        "(default: $FACETWIN_FACE_LANDMARKER or the cache)")
    p.add_argument("--aggregate-rounds", type=int, default=None, metavar="N",
                   help="expression objective: rounds of querying the twin where the policy goes, refitting the "
                        "forward models there and tuning the policy again (agents.forward.aggregation; default "
                        f"{aggregation.rounds}, or 0 with --forward, which takes another run's forward models as "
                        "they are)")
    p.add_argument("--aggregate-targets", type=int, default=aggregation.targets, metavar="K",
                   help="targets per aggregation round; each costs three twin samples (the policy's answer, its "
                        "refined one and its explored one; two with --aggregate-explore 0), so a run uses its recorded "
                        "rows + 3 x K x N twin samples (default %(default)s)")
    p.add_argument("--aggregate-explore", type=float, default=aggregation.explore, metavar="STD",
                   help="also query each target's answer with every region's commands scaled by exp(N(0, STD)), a "
                        "third twin sample per target; 0 leaves it out (default %(default)s)")
    p.add_argument("--aggregate-confirm", type=float, default=aggregation.confirm, metavar="W",
                   help="while tuning after each round, also pull the policy with weight W toward, per target, the "
                        "query the twin read closest to it (pixels confirm the proposals; default %(default)s: off)")
    p.add_argument("--query-worlds", type=int, default=aggregation.query_worlds, metavar="N",
                   help="settle the aggregation rounds' twin queries N at a time on a BatchTwin (fast-read datasets; "
                        "default %(default)s: one FaceTwin, one at a time)")
    p.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                   help="override one of the model kind's hyper-parameters (agents.policies.kinds.DEFAULT_HPARAMS), "
                        "VALUE as JSON; repeatable, e.g. --hparam hidden=[444,444] for a wider MLP")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_face_option(p, recorded_by="the dataset")
    p.set_defaults(func=run)


def parse_hparams(items: list[str]) -> dict:
    """["hidden=[64,64]", "dropout=0.1"] -> {"hidden": [64, 64], "dropout": 0.1}; a bare word is a string."""
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--hparam {item!r}: expected KEY=VALUE, e.g. --hparam hidden=[64,64]")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # gate=softmax: strings need no JSON quotes
    return out


def run(args) -> int:
    from dataclasses import replace

    from facetwin.agents.forward.landmark import TEACHER_WEIGHTS_FILE, LandmarkSettings, load_teacher
    from facetwin.agents.training.train import train_from_dataset
    from facetwin.dataset import DatasetError
    from facetwin.landmarker_bundle import LandmarkerModelError

    if not args.data.is_dir():
        raise CLIError(f"no dataset directory at {args.data}")
    if args.epochs < 1 or args.batch_size < 1 or args.patience < 1:
        raise CLIError("--epochs, --batch-size and --patience must be at least 1")
    spec = dataset_face_spec(args, args.data)
    hparams = parse_hparams(args.hparam)
    objective = args.objective
    if objective == "auto":
        objective = "expression" if args.model in NEURAL_KINDS else "supervised"
    if args.expression_epochs < 1 or args.anchor < 0:
        raise CLIError("--expression-epochs must be at least 1 and --anchor at least 0")
    if args.query_worlds < 0:
        raise CLIError(f"--query-worlds must be 0 (one FaceTwin) or a number of batched worlds, got {args.query_worlds}")
    if args.aggregate_explore < 0:
        raise CLIError(f"--aggregate-explore is a standard deviation: at least 0, got {args.aggregate_explore}")
    if args.aggregate_confirm < 0:
        raise CLIError(f"--aggregate-confirm is a loss weight: at least 0, got {args.aggregate_confirm}")
    aggregation = AggregationSettings(targets=args.aggregate_targets, query_worlds=args.query_worlds,
                                      explore=args.aggregate_explore, confirm=args.aggregate_confirm)
    if args.aggregate_rounds is not None:
        aggregation = replace(aggregation, rounds=args.aggregate_rounds)
    elif args.forward is not None:  # another run's forward models are taken as they are
        aggregation = replace(aggregation, rounds=0)
    if aggregation.rounds < 0 or aggregation.targets < 1:
        raise CLIError("--aggregate-rounds must be at least 0 and --aggregate-targets at least 1")
    forward = teacher = None
    if args.forward is not None:
        if objective != "expression":
            raise CLIError(f"--forward is for the expression objective ({', '.join(NEURAL_KINDS)})")
        from facetwin.agents.training.checkpoint import RunConfig, check_spec
        from facetwin.agents.forward.direct import load_forward
        from facetwin.dataset import read_info
        from facetwin.dataset.layout import same_readout

        try:
            check_spec(RunConfig.read(args.forward), spec, f"the forward model of run {args.forward}")
            same_readout(f"the forward model of run {args.forward}", RunConfig.read(args.forward).readout,
                         f"dataset {args.data}", read_info(args.data).readout)
            forward = load_forward(args.forward)
            # the teacher travels with its student, so the new run can refine through it too
            if (args.forward / TEACHER_WEIGHTS_FILE).is_file():
                teacher = load_teacher(args.forward, args.landmarker)
        except (FileNotFoundError, ValueError, LandmarkerModelError) as exc:
            raise CLIError(str(exc)) from exc
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    seed, device, progress = args.seed, args.device, not args.no_progress
    try:
        config = TrainConfig(
            model=args.model, hparams=hparams, objective=objective, val_fraction=args.val_fraction,
            max_samples=args.max_samples, aggregation=aggregation, forward_model=args.forward_model,
            fit=FitSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                            seed=seed, device=device, progress=progress),
            expression=ExpressionSettings(epochs=args.expression_epochs, anchor=args.anchor, seed=seed, device=device,
                                          progress=progress),
            landmark=LandmarkSettings(seed=seed, device=device, bundle=args.landmarker))
        result = train_from_dataset(args.data, config, out_dir=args.out, spec=spec, forward=forward, teacher=teacher)
    except (ValueError, FileNotFoundError, DatasetError, LandmarkerModelError) as exc:
        raise CLIError(str(exc)) from exc
    print(f"{args.model}: {result.n_train} train / {result.n_val} validation frames, "
          f"{len(result.history.train_loss)} epochs on {result.history.device}")
    print(f"validation MSE {result.val_mse:.5f} (predicting the mean: {result.mean_baseline_val_mse:.5f})")
    if result.expression is not None:
        ex, fw = result.expression, result.expression.forward_score
        print(f"forward model ({fw.method}): validation blendshape MAE {fw.blendshape_mae:.4f}, head {fw.head_error_deg:.2f} deg "
              f"(predicting the mean: {fw.mean_baseline_blendshape_mae:.4f}, {fw.mean_baseline_head_error_deg:.2f} deg)")
        if fw.teacher_blendshape_mae is not None:
            print(f"  distilled from the landmark teacher: its validation blendshape MAE {fw.teacher_blendshape_mae:.4f}, "
                  f"student-teacher gap {fw.distil_gap:.4f} on broad commands")
        print(f"expression pass: held-out perturbed targets, loss through the forward model "
              f"{ex.val_expression_loss_before:.4f} -> {ex.val_expression_loss:.4f}")
    for i, r in enumerate(result.aggregation or []):
        unread = f" ({r.unread} renders without a face found, left out)" if r.unread else ""
        teacher = "" if math.isnan(r.teacher_error) else f"teacher {r.teacher_error:.4f}, "  # no teacher: a direct run
        print(f"aggregation round {i + 1}: {r.queries} twin queries{unread}; twin blendshape MAE at the policy's answers "
              f"{r.policy_twin_loss:.4f}, refined {r.refined_twin_loss:.4f}; forward error there: {teacher}"
              f"student {r.student_error:.4f}")
    if result.aggregation:
        agg = result.policy.config.training["aggregation"]
        print(f"twin samples in all: {agg['twin_samples']} ({agg['twin_queries']} of them queried in aggregation)")
    print(f"wrote {result.run_dir}")
    return 0
