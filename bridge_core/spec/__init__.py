"""The job spec: pydantic models; loading own YAML/JSON and Cosmos-Transfer1/2.5 specs; dumping."""

from bridge_core.spec.cosmos import SourceFormat
from bridge_core.spec.load import (
    LoadedSpec,
    dump_job_spec,
    job_spec_schema,
    load_job_spec,
    load_job_specs,
    parse_job_spec,
)
from bridge_core.spec.models import (
    ClassRule,
    ControlName,
    ControlSpec,
    DepthBandRule,
    InputSpec,
    InstanceRule,
    JobSpec,
    KeyframeRule,
    MaskRule,
    ModelSpec,
    OutputSpec,
    Preset,
    RuleOp,
    Variation,
    WeightRule,
)

__all__ = [
    "ClassRule",
    "ControlName",
    "ControlSpec",
    "DepthBandRule",
    "InputSpec",
    "InstanceRule",
    "JobSpec",
    "KeyframeRule",
    "LoadedSpec",
    "MaskRule",
    "ModelSpec",
    "OutputSpec",
    "Preset",
    "RuleOp",
    "SourceFormat",
    "Variation",
    "WeightRule",
    "dump_job_spec",
    "job_spec_schema",
    "load_job_spec",
    "load_job_specs",
    "parse_job_spec",
]
