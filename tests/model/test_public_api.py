"""Pins transfer_model's public names."""

import transfer_model


def test_exported_names() -> None:
    assert sorted(transfer_model.__all__) == sorted(
        [
            "ATTENTION_BACKENDS",
            "BRANCH_REVISION",
            "DEFAULT_MODEL_DIR",
            "DEFAULT_STUDENT_DIR",
            "DEFAULT_REPO",
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
    )
    for name in transfer_model.__all__:
        assert hasattr(transfer_model, name)


def test_bridge_core_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bridge_core.run.protocol, bridge_core.controls.stack;"
        "print('torch' in sys.modules)"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
        == "False"
    )
