"""Data aggregation in the twin: ask the face itself where the policy goes, and refit the forward models there.

A policy trained through a forward model goes where the collected data is thin, and there the teacher's
error against the twin is largest (measured in docs/experiments.md, "Aggregation"). The twin can be
queried cheaply, so each round does what DAgger does for imitation:

    targets  drawn by the expression pass's TargetSampler (never the human faces it is scored on)
    query    the twin at the policy's answer, at the answer refined through the student and (exploring, the
             default) at the answer with each region scaled by a random gain: more or less of the same,
             where the forward model has no data to tell how the face reads an expression pushed further
    refit    the teacher on recorded + queried rows; the student on the teacher's labels of broad commands
             and of the queried ones jittered, and on the twin's own expressions at the queried ones
    tune     the policy through the refitted student (the expression pass, a few epochs), and (with
             `confirm` > 0) toward the pixel-confirmed answers so far: per target, the query the twin read closest

Every query is a twin sample: the config records how many, next to the recorded rows, so a run states its
whole data budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from facetwin.expression import ACTIVE_BLENDSHAPES, N_BLENDSHAPES, N_LANDMARKS

from facetwin.agents.forward.expression_objective import Confirmed, Coupling, ExpressionSettings, TargetMix, TargetSampler
from facetwin.agents.forward.direct import ForwardModel, expression_loss
from facetwin.agents.forward.landmark import LandmarkForward, broad_commands, fit_teacher_net, label, minibatch_adam
from facetwin.agents.training.minibatch import resolve_device
from facetwin.agents.training.config import AggregationSettings  # torch-free, for the CLI's defaults
from facetwin.agents.evaluation.oracle import reach
from facetwin.agents.forward.refine import Refiner

# commands (N, S) in [-1, 1], coupling-limited -> (expressions (N, 55), landmarks (N, 478, 3) pixels); a row the
# readout could not read (no face found in its render) is NaN, and the rounds leave it out
TwinQuery = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class AggregationRound:
    queries: int
    unread: int  # of those, the renders in which the landmarker found no face: left out of the refits
    policy_twin_loss: float  # the twin's blendshape MAE to this round's targets at the policy's answers
    refined_twin_loss: float  # ... at those answers refined through the student
    teacher_error: float  # blendshape MAE of the teacher against the twin at the queried commands, before refitting
    student_error: float  # the same for the student
    seconds: float


def twin_query(spec=None, bundle=None, readout: str = "fast") -> TwinQuery:
    """Settle each command from the neutral face, as the oracle and the closed-loop evaluation do, and read it out
    through `readout` (the training data's: fast, or pixels, one PixelReadout batch per query)."""
    from facetwin.sim.twin import FaceTwin

    twin = FaceTwin(spec, bundle)

    def query(commands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if readout == "fast":
            reached = [reach(twin, c).expression for c in commands]
        else:
            poses = []
            for c in commands:
                reach(twin, c)
                poses.append(twin.data.qpos.copy())
            reached = twin.pixel_readout().read(np.array(poses))
        # a row of zeros would teach the forward models a face that was never seen: NaN marks it unread
        unread = np.full((N_LANDMARKS, 3), np.nan, np.float32)
        return (np.asarray([e.vector if e.face_found else np.full_like(e.vector, np.nan) for e in reached], np.float32),
                np.asarray([e.landmarks if e.face_found else unread for e in reached], np.float32))

    return query


def aggregate(model, forward: ForwardModel, teacher: LandmarkForward | None, coupling: Coupling, query: TwinQuery,
              x: np.ndarray, y: np.ndarray, landmarks: np.ndarray | None, x_val: np.ndarray, y_val: np.ndarray,
              settings: AggregationSettings, expression_settings: ExpressionSettings,
              mix: TargetMix | None = None) -> list[AggregationRound]:
    """Rounds of query -> refit -> tune; `forward`, `teacher` and the policy `model` change in place.

    Without a teacher (data without landmarks) the direct forward model is refitted on recorded + queried pairs."""
    if teacher is not None and landmarks is None:
        raise ValueError("refitting the landmark teacher needs the recorded rows' landmarks; pass landmarks")
    dev = resolve_device(settings.device)
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    sampler = TargetSampler(x, mix)
    act = np.array(ACTIVE_BLENDSHAPES)
    c_rec, e_rec, lm_rec = y, x, landmarks
    confirmed_t, confirmed_c = [], []  # every round's targets and the query that read closest to each
    rounds = []
    for _ in range(settings.rounds):
        start = time.perf_counter()
        forward.to("cpu")  # the expression pass leaves it on its device; queries and refinement run on the CPU
        targets = sampler.sample(settings.targets, rng)
        answer = _answers(model.module, coupling, targets)
        refined = Refiner(forward, coupling, settings.refine_steps)(targets, answer)
        blocks = [answer, refined]
        if settings.explore > 0:
            blocks.append(_explored(answer, model.regions, settings.explore, coupling, rng))
        commands = np.concatenate(blocks)
        expressions, queried_landmarks = query(commands)
        n, read = len(targets), ~np.isnan(expressions).any(axis=1)
        if not read.any():
            raise ValueError(f"the twin's readout found no face in any of the {len(commands)} renders at the policy's "
                             "answers; check the landmarker bundle, or train with --aggregate-rounds 0")
        queried = commands
        if settings.confirm > 0:
            t_best, c_best = closest_reads(targets, queried, expressions, act)
            confirmed_t.append(t_best)
            confirmed_c.append(c_best)
        commands, expressions, queried_landmarks = commands[read], expressions[read], queried_landmarks[read]
        block = np.repeat(np.arange(len(blocks)), n)[read]  # 0: answer, 1: refined, 2: explored
        asked = np.tile(targets, (len(blocks), 1))[read]
        twin_loss = lambda e, t: float(np.abs(e[:, act] - t[:, act]).mean()) if len(e) else float("nan")  # noqa: E731
        with torch.no_grad():
            c = torch.as_tensor(commands)
            teacher_error = float("nan") if teacher is None else _blendshape_error(label(teacher, c), expressions, act)
            student_error = _blendshape_error(forward(c), expressions, act)
        c_rec, e_rec = np.concatenate([c_rec, commands]), np.concatenate([e_rec, expressions])
        if teacher is not None:
            lm_rec = np.concatenate([lm_rec, queried_landmarks])
            fit_teacher_net(teacher, c_rec, lm_rec, e_rec[:, N_BLENDSHAPES:], settings.teacher_epochs, 256, settings.lr, dev)
            _refit_student(forward, teacher, coupling, y, commands, expressions, settings, rng, dev)
        else:
            _go_on_fitting(forward, torch.as_tensor(c_rec, device=dev), torch.as_tensor(e_rec, device=dev), settings, dev)
        # never longer than the expression pass itself (a quick run's few epochs stay few)
        epochs = min(settings.policy_epochs, expression_settings.epochs)
        confirmed = (Confirmed(np.concatenate(confirmed_t), np.concatenate(confirmed_c), settings.confirm)
                     if confirmed_t else None)
        model.fit_expression(forward, coupling, x, y, x_val, y_val,
                             replace(expression_settings, epochs=epochs, lr=settings.lr, grid_update_epochs=()), mix,
                             confirmed)
        rounds.append(AggregationRound(len(queried), int((~read).sum()),
                                       twin_loss(expressions[block == 0], asked[block == 0]),
                                       twin_loss(expressions[block == 1], asked[block == 1]),
                                       teacher_error, student_error, round(time.perf_counter() - start, 3)))
    return rounds


def closest_reads(targets: np.ndarray, queried: np.ndarray, expressions: np.ndarray,
                  active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Targets (n, 55) and their queries, block after block ((k n, S) commands, (k n, 55) readings, NaN where
    unread) -> the targets with at least one reading, and for each the command that read closest to it
    (blendshape MAE over the active coefficients)."""
    n = len(targets)
    k = len(queried) // n
    error = np.abs(expressions[:, active] - np.tile(targets, (k, 1))[:, active]).mean(axis=1).reshape(k, n)
    seen = ~np.isnan(error).all(axis=0)
    best = np.nanargmin(np.where(np.isnan(error), np.inf, error), axis=0)
    chosen = queried.reshape(k, n, -1)[best, np.arange(n)]
    return targets[seen], chosen[seen]


@torch.no_grad()
def _explored(answer: np.ndarray, regions, scale: float, coupling: Coupling, rng: np.random.Generator) -> np.ndarray:
    regions = np.asarray(regions)
    gains = np.exp(rng.normal(0.0, scale, (len(answer), regions.max() + 1)))[:, regions]
    return coupling(torch.as_tensor(np.clip(answer * gains, -1.0, 1.0).astype(np.float32))).numpy()


@torch.no_grad()
def _answers(module: torch.nn.Module, coupling: Coupling, targets: np.ndarray) -> np.ndarray:
    module.eval()
    return coupling(module(torch.as_tensor(targets))).numpy()


def _blendshape_error(predicted: torch.Tensor, expressions: np.ndarray, act: np.ndarray) -> float:
    return float(np.abs(predicted.cpu().numpy()[:, act] - expressions[:, act]).mean())


def _refit_student(student: ForwardModel, teacher: LandmarkForward, coupling: Coupling, recorded: np.ndarray,
                   queried: np.ndarray, queried_expressions: np.ndarray, settings: AggregationSettings,
                   rng: np.random.Generator, dev: torch.device) -> None:
    """Go on distilling: the teacher's labels on broad commands and on jittered copies of the queried ones,
    and the twin's own expressions at the queried commands (better than any label)."""
    jittered = np.clip(queried + rng.normal(0.0, settings.jitter, queried.shape), -1.0, 1.0).astype(np.float32)
    with torch.no_grad():
        n_broad = min(settings.distil_samples, settings.distil_per_row * len(recorded))
        labelled = coupling(torch.as_tensor(np.concatenate([broad_commands(recorded, n_broad, rng), jittered])))
        command = torch.cat([labelled, torch.as_tensor(queried)]).to(dev)
        expression = torch.cat([label(teacher.to(dev), labelled.to(dev)), torch.as_tensor(queried_expressions, device=dev)])
    teacher.to("cpu")
    _go_on_fitting(student, command, expression, settings, dev)


def _go_on_fitting(forward: ForwardModel, command: torch.Tensor, expression: torch.Tensor,
                   settings: AggregationSettings, dev: torch.device) -> None:
    forward.to(dev).train()
    for p in forward.parameters():
        p.requires_grad_(True)
    minibatch_adam(forward, torch.arange(len(command), device=dev), settings.distil_epochs, 512, settings.lr,
                   lambda idx: expression_loss(forward(command[idx]), expression[idx]))
    forward.to("cpu").eval()
    for p in forward.parameters():
        p.requires_grad_(False)
