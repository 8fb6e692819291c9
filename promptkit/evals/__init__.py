"""Eval harness: suites, datasets, scorers, a resumable runner, and statistics for paired prompt comparisons.

    log = run_suite("evals/examples/debug_fewshot.yaml", out="log.json")   # an EvalLog
    assert_suite("evals/examples/debug_fewshot.yaml")                      # raise when a CI gate fails
"""

from promptkit.evals._dataset import DatasetSpec, Item, load_dataset
from promptkit.evals._log import Aggregate, EvalLog, ItemResult, Score, VariantInfo
from promptkit.evals._passk import pass_at_k, pass_at_k_array
from promptkit.evals._runlog import RunLog
from promptkit.evals._runner import arun_suite, assert_suite, derive_seed, failed_gates, run_suite
from promptkit.evals._scorers import (
    Generation,
    PairwiseJudge,
    PairwiseVerdict,
    Scorer,
    ScorerEnv,
    build_program,
    build_scorer,
    extract_code,
    extract_number,
    normalize_text,
    scorer,
    scorer_types,
)
from promptkit.evals._suite import Suite, SuiteSpec, VariantSpec, load_suite
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

__all__ = [
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
]
