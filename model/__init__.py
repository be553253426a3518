"""transfer_model: Cosmos-Transfer2.5 in process, with several weighted control branches.

The public surface is re-exported here; the modules under ``transfer_model.cosmos``
are the implementation.
"""

from transfer_model.cosmos.configs import MODEL_PRESETS, ModelPreset, flow_scheduler
from transfer_model.cosmos.errors import (
    CheckpointFormatError,
    GuardrailBlockedError,
    ModelAccessError,
    TransferModelError,
)
from transfer_model.cosmos.guardrail import PassThroughChecker, SafetyChecker, checker_for
from transfer_model.cosmos.loading import (
    BRANCH_REVISION,
    DEFAULT_MODEL_DIR,
    DEFAULT_REPO,
    DEFAULT_STUDENT_DIR,
    PIPELINE_REVISION,
    load_transfer_model,
)
from transfer_model.cosmos.memory import MEMORY_POLICIES, MemoryPolicy
from transfer_model.cosmos.model import ATTENTION_BACKENDS, CosmosTransferModel
from transfer_model.cosmos.prompts import (
    CosmosReasonEncoder,
    HashTextEncoder,
    PromptEmbeddingCache,
    TextEncoder,
    hash_prompt_cache,
)
from transfer_model.cosmos.sampling import Branch, SampleResult, sample

__all__ = [
    "ATTENTION_BACKENDS",
    "BRANCH_REVISION",
    "DEFAULT_MODEL_DIR",
    "DEFAULT_REPO",
    "DEFAULT_STUDENT_DIR",
    "MEMORY_POLICIES",
    "MODEL_PRESETS",
    "PIPELINE_REVISION",
    "Branch",
    "CheckpointFormatError",
    "CosmosReasonEncoder",
    "CosmosTransferModel",
    "GuardrailBlockedError",
    "HashTextEncoder",
    "MemoryPolicy",
    "ModelAccessError",
    "ModelPreset",
    "PassThroughChecker",
    "PromptEmbeddingCache",
    "SafetyChecker",
    "SampleResult",
    "TextEncoder",
    "TransferModelError",
    "checker_for",
    "flow_scheduler",
    "hash_prompt_cache",
    "load_transfer_model",
    "sample",
]
