"""Eval harness: suites, datasets, scorers, a resumable runner, and statistics for paired prompt comparisons.

log = run_suite("evals/examples/debug_fewshot.yaml", out="log.json")   # an EvalLog
assert_suite("evals/examples/debug_fewshot.yaml")                      # raise when a CI gate fails
"""

from promptkit.evals._ab import (
    ABReport,
    PairComparison,
    ThresholdCheck,
    VariantSummary,
    check_thresholds,
    compare_variants,
)
from promptkit.evals._bank import Bank, load_bank, write_bank
from promptkit.evals._dataset import DatasetSpec, Item, SplitSpec, load_dataset
from promptkit.evals._distill import DistillResult, distill
from promptkit.evals._eval_log import Aggregate, EvalLog, ItemResult, Score, VariantInfo
from promptkit.evals._html import to_html, write_html
from promptkit.evals._judge_scorers import PairwiseJudge, PairwiseVerdict
from promptkit.evals._pairwise import (
    PairwiseComparison,
    PairwiseJudgement,
    PairwiseReport,
    ajudge_pairs,
    compare_pairwise,
    judge_pairs,
    wilson_interval,
)
from promptkit.evals._passk import pass_at_k, pass_at_k_array
from promptkit.evals._ray import RayOptions, RayStats
from promptkit.evals._report import print_report, render_terminal, to_markdown
from promptkit.evals._runlog import RunLog
from promptkit.evals._runner import (
    arun_suite,
    assert_suite,
    derive_seed,
    describe_gate,
    failed_gates,
    run_suite,
)
from promptkit.evals._scorer_base import Generation, Scorer, ScorerEnv
from promptkit.evals._scorers import build_scorer, extract_number, normalize_text, scorer, scorer_types
from promptkit.evals._stats import (
    BootstrapCI,
    Comparison,
    HolmResult,
    McNemarResult,
    WilcoxonResult,
    compare_many,
    compare_paired,
    flip_rate,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    per_item_majority,
    power_mcnemar,
    power_paired_mean,
    required_pairs_mcnemar,
    required_pairs_paired_mean,
    wilcoxon_signed_rank,
)
from promptkit.evals._suite import Suite, SuiteSpec, VariantSpec, load_suite
from promptkit.execution import build_program, extract_code

__all__ = [
    "Bank",
    "load_bank",
    "write_bank",
    "SplitSpec",
    "DistillResult",
    "distill",
    "describe_gate",
    "ABReport",
    "PairComparison",
    "ThresholdCheck",
    "VariantSummary",
    "check_thresholds",
    "compare_variants",
    "to_html",
    "write_html",
    "print_report",
    "render_terminal",
    "to_markdown",
    "Aggregate",
    "DatasetSpec",
    "EvalLog",
    "Generation",
    "Item",
    "ItemResult",
    "PairwiseJudge",
    "PairwiseVerdict",
    "RunLog",
    "Score",
    "Scorer",
    "ScorerEnv",
    "Suite",
    "SuiteSpec",
    "VariantInfo",
    "VariantSpec",
    "arun_suite",
    "assert_suite",
    "build_program",
    "build_scorer",
    "derive_seed",
    "extract_code",
    "extract_number",
    "failed_gates",
    "load_dataset",
    "load_suite",
    "normalize_text",
    "run_suite",
    "scorer",
    "scorer_types",
    "pass_at_k",
    "pass_at_k_array",
    "RayOptions",
    "RayStats",
    "BootstrapCI",
    "Comparison",
    "HolmResult",
    "McNemarResult",
    "WilcoxonResult",
    "compare_many",
    "compare_paired",
    "flip_rate",
    "holm",
    "mcnemar_exact",
    "paired_bootstrap",
    "per_item_majority",
    "power_mcnemar",
    "power_paired_mean",
    "required_pairs_mcnemar",
    "required_pairs_paired_mean",
    "wilcoxon_signed_rank",
    "PairwiseComparison",
    "PairwiseJudgement",
    "PairwiseReport",
    "ajudge_pairs",
    "compare_pairwise",
    "judge_pairs",
    "wilson_interval",
]
