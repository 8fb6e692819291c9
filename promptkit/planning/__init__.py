"""App specs, typed plans of verified steps, playbooks and planners.

    from promptkit.planning import load_spec, get_planner
    spec = load_spec("examples/todo_api.yaml")            # AppSpec (or TaskSpec for fix/refactor tasks)
    plan = get_planner("playbook").plan(spec)             # deterministic: same spec, same bytes
    plan = get_planner("hybrid", model="cheap").plan(spec)
    for step in plan.topological_order(): ...             # the executor's contract: see Plan and Step

Nothing here imports a model SDK; the LLM planners call ``promptkit.generation`` only when they plan.
"""

from promptkit.planning._context import sample_value, spec_context
from promptkit.planning._paths import glob_to_regex, is_glob, path_allowed, path_problem
from promptkit.planning._plan import (
    MODEL_STEP_KINDS,
    PLANNERS,
    RUNTIME_INPUTS,
    STEP_KINDS,
    Difficulty,
    Plan,
    RouteHint,
    Step,
    StepKind,
    VerifierSpec,
    verifier_spec_problem,
)
from promptkit.planning._planners import (
    DEFAULT_VERIFIERS,
    HybridPlanner,
    LLMPlanner,
    Planner,
    PlaybookPlanner,
    get_planner,
    steps_from_model_output,
)
from promptkit.planning._playbook import (
    PLAYBOOK_PATH_ENV,
    Playbook,
    StepTemplate,
    builtin_playbook_dir,
    find_playbook,
    list_playbooks,
    load_playbook,
    playbook_for,
)
from promptkit.planning._spec import (
    FIELD_TYPES,
    STACKS,
    TASKS,
    AppSpec,
    Entity,
    EntityField,
    Feature,
    FieldType,
    Spec,
    Stack,
    TaskSpec,
    load_spec,
    parse_spec,
)

__all__ = [
    # specs
    "AppSpec",
    "TaskSpec",
    "Spec",
    "Entity",
    "EntityField",
    "Feature",
    "Stack",
    "FieldType",
    "STACKS",
    "FIELD_TYPES",
    "TASKS",
    "load_spec",
    "parse_spec",
    # plans
    "Plan",
    "Step",
    "RouteHint",
    "StepKind",
    "Difficulty",
    "VerifierSpec",
    "STEP_KINDS",
    "MODEL_STEP_KINDS",
    "RUNTIME_INPUTS",
    "PLANNERS",
    "verifier_spec_problem",
    "path_allowed",
    "path_problem",
    "is_glob",
    "glob_to_regex",
    # playbooks
    "Playbook",
    "StepTemplate",
    "load_playbook",
    "find_playbook",
    "list_playbooks",
    "playbook_for",
    "builtin_playbook_dir",
    "PLAYBOOK_PATH_ENV",
    "spec_context",
    "sample_value",
    # planners
    "Planner",
    "PlaybookPlanner",
    "LLMPlanner",
    "HybridPlanner",
    "get_planner",
    "steps_from_model_output",
    "DEFAULT_VERIFIERS",
]
