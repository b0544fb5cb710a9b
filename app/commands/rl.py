"""`facetwin rl`: fine-tune a pretrained policy with a residual PPO policy in FaceMimic (the `rl` extra)."""

from __future__ import annotations

from pathlib import Path

from facetwin.app.cli import CLIError
from facetwin.app.face_option import add_face_option, face_spec, run_face_spec
from facetwin.spec import DEFAULT_FACE


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rl",
        help="residual RL: PPO learns a closed-loop correction on top of a trained policy (needs facetwin[rl])",
        description="Score the policy alone on seeded FaceMimic-v0 targets, train a residual PPO policy on top "
        "of it, and score both on the same targets. Writes results.json and residual_policy.zip into --out.",
    )
    p.add_argument("--policy", type=Path, default=None, metavar="RUN_DIR",
                   help="a training run (facetwin train); without it a ridge policy is fitted on twin samples")
    p.add_argument("--steps", type=int, default=20_000, metavar="N", help="PPO environment steps (default 20000)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="where results.json and the model go")
    p.add_argument("--scale", type=float, default=0.2, help="command units per unit residual (default 0.2)")
    p.add_argument("--integrate", action="store_true",
                   help="residuals accumulate into a lasting offset instead of correcting each step on their own")
    p.add_argument("--algo", choices=("ppo", "sac"), default="ppo")
    p.add_argument("--eval-episodes", type=int, default=32, metavar="N", help="seeded targets scored (default 32)")
    p.add_argument("--targets", default="primitives", metavar="SOURCE",
                   help="FaceMimic target source: primitives, faces:DIR or dataset:DIR (default primitives)")
    p.add_argument("--pairs", type=int, default=2000, metavar="N",
                   help="twin samples for the ridge policy when no --policy is given (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    add_face_option(p, default=f"the face the --policy run was trained for; without --policy, {DEFAULT_FACE}")
    p.set_defaults(func=run)


def run(args) -> int:
    from facetwin.agents.training import residual_rl as rl

    if args.steps < 1 or args.eval_episodes < 1 or args.pairs < 30:
        raise CLIError("--steps and --eval-episodes must be at least 1, --pairs at least 30")
    try:
        rl.require_sb3()
        config = rl.ResidualConfig(steps=args.steps, scale=args.scale, integrate=args.integrate, algo=args.algo,
                                   target_source=args.targets, eval_episodes=args.eval_episodes, seed=args.seed)
    except (rl.RLUnavailableError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    if args.policy is not None:
        from facetwin.agents.training.checkpoint import RunError, load_run_policy

        spec = run_face_spec(args, args.policy)
        try:
            base = load_run_policy(args.policy, spec)
        except RunError as exc:
            raise CLIError(str(exc)) from exc
        description = f"{base.kind} run {args.policy}"
    else:
        spec = face_spec(args)
        print(f"no --policy: fitting a ridge policy on {args.pairs} twin samples of face {spec.face!r}")
        base = rl.ridge_base(*rl.twin_pairs(args.pairs, seed=args.seed, spec=spec))
        description = f"ridge on {args.pairs} twin samples"
    try:
        result = rl.train_residual(base, config, args.out, description, progress=print, spec=spec)
    except ValueError as exc:  # e.g. an unknown --targets source
        raise CLIError(str(exc)) from exc
    print(f"face {spec.face!r}: final blendshape error: base {result.base.final_blendshape_error:.4f} -> base + residual "
          f"{result.residual.final_blendshape_error:.4f} ({-100 * result.improvement:+.1f} %) on "
          f"{config.eval_episodes} targets; written to {Path(args.out) / rl.RESULTS_FILE}")
    return 0
