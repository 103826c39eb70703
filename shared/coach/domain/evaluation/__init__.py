"""Evaluating a critic before it serves anyone: the evaluation set, the scores, the judge and the gate.

Pure domain code; the pipeline stage `coach.pipeline.evaluate` calls the models and stores the results.
"""

from coach.domain.evaluation.evalset import EvalItem, EvalSet, HeldOutStory, make_eval_set
from coach.domain.evaluation.flaws import FLAW_KINDS, FlawKind, PlantedFlaw, names_flaw, plant
from coach.domain.evaluation.gate import GateCheck, GateConfig, GateDecision, decide
from coach.domain.evaluation.judge import JudgeScores, PairJudgement, aggregate, wilson
from coach.domain.evaluation.metrics import CriticScores, CritiqueResult, FlawScore, reference_answers, score
from coach.domain.evaluation.results import EvaluationReport, EvaluationSummary

__all__ = [
    "FLAW_KINDS",
    "CriticScores",
    "CritiqueResult",
    "EvalItem",
    "EvalSet",
    "EvaluationReport",
    "EvaluationSummary",
    "FlawKind",
    "FlawScore",
    "GateCheck",
    "GateConfig",
    "GateDecision",
    "HeldOutStory",
    "JudgeScores",
    "PairJudgement",
    "PlantedFlaw",
    "aggregate",
    "decide",
    "make_eval_set",
    "names_flaw",
    "plant",
    "reference_answers",
    "score",
    "wilson",
]
