"""The "2b" preset is Cosmos-Transfer2.5-2B's published architecture: its diffusers configs,
and parameter counts, built on the meta device (no weights allocated, no network)."""

from __future__ import annotations

import time

import pytest
import torch

from transfer_model.cosmos import configs

PRESET = configs.MODEL_PRESETS["2b"]

# huggingface/diffusers scripts/convert_cosmos_to_diffusers.py (commit 58eb52c),
# TRANSFORMER_CONFIGS["Cosmos-2.5-Transfer-General-2B"] and
# CONTROLNET_CONFIGS["Cosmos-2.5-Transfer-General-2B"], copied key by key.
TRANSFORMER_CONFIG = {
    "in_channels": 16 + 1,
    "out_channels": 16,
    "num_attention_heads": 16,
    "attention_head_dim": 128,
    "num_layers": 28,
    "mlp_ratio": 4.0,
    "text_embed_dim": 1024,
    "adaln_lora_dim": 256,
    "max_size": (128, 240, 240),
    "patch_size": (1, 2, 2),
    "rope_scale": (1.0, 3.0, 3.0),
    "concat_padding_mask": True,
    "extra_pos_embed_type": None,
    "use_crossattn_projection": True,
    "crossattn_proj_in_channels": 100352,
    "encoder_hidden_states_channels": 1024,
    "controlnet_block_every_n": 7,
    "img_context_dim_in": 1152,
    "img_context_dim_out": 2048,
    "img_context_num_tokens": 256,
}
CONTROLNET_CONFIG = {
    "n_controlnet_blocks": 4,
    "model_channels": 2048,
    "in_channels": 130,
    "latent_channels": 18,
    "num_attention_heads": 16,
    "attention_head_dim": 128,
    "mlp_ratio": 4.0,
    "text_embed_dim": 1024,
    "adaln_lora_dim": 256,
    "patch_size": (1, 2, 2),
    "max_size": (128, 240, 240),
    "rope_scale": (1.0, 3.0, 3.0),
    "extra_pos_embed_type": None,
    "img_context_dim_in": 1152,
    "img_context_dim_out": 2048,
    "use_crossattn_projection": True,
    "crossattn_proj_in_channels": 100352,
    "encoder_hidden_states_channels": 1024,
}
# Wan-AI/Wan2.1-T2V-1.3B-Diffusers vae/config.json, the VAE that script copies for 2.5.
VAE_CONFIG = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
}


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple | list) else value


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def meta_models():
    """The 2B transformer, one control branch and the VAE, on the meta device."""
    start = time.perf_counter()
    with torch.device("meta"):
        models = (
            configs.build_transformer(PRESET),
            configs.build_branch(PRESET),
            configs.build_vae(PRESET),
        )
    assert time.perf_counter() - start < 10
    return models


def test_built_on_meta_allocates_nothing(meta_models) -> None:
    for model in meta_models:
        assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize(
    ("index", "published"), [(0, TRANSFORMER_CONFIG), (1, CONTROLNET_CONFIG), (2, VAE_CONFIG)]
)
def test_configs_are_the_published_ones(meta_models, index: int, published: dict) -> None:
    config = meta_models[index].config
    for key, value in published.items():
        assert _plain(config[key]) == _plain(value), key


def test_transformer_is_2b(meta_models) -> None:
    """Published size: the "2B" of the name (the model card gives no exact count). The
    config gives 2,413,864,960, of which 102,761,472 are the projection of Qwen2.5-VL's
    concatenated hidden states (100352 -> 1024): assert the 2B class, [2.0, 2.5) billion,
    and the exact count so that any change of the preset shows."""
    transformer = meta_models[0]
    count = _count(transformer)
    assert 2.0e9 <= count < 2.5e9
    assert count == 2_413_864_960
    assert _count(transformer.crossattn_proj) == 100352 * 1024 + 1024


def test_branch_is_four_base_blocks(meta_models) -> None:
    """No published count for a control branch: its blocks are checked against the base's.
    They are 4 of the base's 28 blocks (one per 7) plus 5 zero-initialised 2048x2048
    projections (before the first block, after each); the text and image projections,
    time embedding and patch embedding of the base latents are copies of the base's."""
    transformer, branch, _ = meta_models
    per_block = _count(transformer.transformer_blocks) // PRESET.num_layers
    projections = 5 * (2048 * 2048 + 2048)
    assert _count(branch.control_blocks) == 4 * per_block + projections
    for name in ("crossattn_proj", "img_context_proj", "time_embed"):
        assert _count(getattr(branch, name)) == _count(getattr(transformer, name)), name
    assert _count(branch) == 471_255_040  # ~0.47B per branch in diffusers' layout


def test_vae_is_wan21(meta_models) -> None:
    """Published: Wan2.1's VAE has 127M parameters (Wan technical report, arXiv 2503.20314;
    its diffusers safetensors are 508 MB in fp32). Within 1%."""
    count = _count(meta_models[2])
    assert count == pytest.approx(127e6, rel=0.01)
    assert count == 126_892_531


def test_branch_feeds_transformer_on_meta(meta_models) -> None:
    """Shapes only (meta tensors): the inputs sampling.py builds for a 2B chunk go through a
    branch and the transformer; prompts are 100352 wide, the image context 256 x 1152."""
    transformer, branch, _ = meta_models
    with torch.device("meta"):
        latents = torch.randn(1, 16, 3, 8, 8)
        cond_mask = torch.zeros(1, 1, 3, 8, 8)
        padding = torch.zeros(1, 1, 64, 64)
        timestep = torch.zeros(1, 1, 3, 1, 1)
        context = (torch.randn(1, 8, PRESET.prompt_embed_dim), torch.zeros(1, 256, 1152))
        inputs = {
            "latents": latents,
            "timestep": timestep,
            "encoder_hidden_states": context,
            "condition_mask": cond_mask,
            "padding_mask": padding,
        }
        residuals = branch(controls_latents=latents, return_dict=False, **inputs)[0]
        inputs["hidden_states"] = inputs.pop("latents")
        out = transformer(block_controlnet_hidden_states=residuals, return_dict=False, **inputs)
    assert len(residuals) == 4 and residuals[0].shape == (1, 3 * 4 * 4, 2048)
    assert out[0].shape == latents.shape


def test_toy_presets_keep_their_defaults() -> None:
    """The fields the 2b preset added default to what the toy presets always built."""
    for name in ("tiny", "small", "default", "codec4x"):
        preset = configs.MODEL_PRESETS[name]
        assert preset.rope_scale == (2.0, 1.0, 1.0)
        assert preset.learnable_pos_embed and preset.vae_num_res_blocks == 1
        assert preset.crossattn_proj_in_channels is None
        assert preset.branch_in_channels == configs.LATENT_CHANNELS + 2
        assert preset.prompt_embed_dim == preset.text_embed_dim


def test_bench_gpu_runs_tiny_on_cpu(capsys) -> None:
    """bench/gpu.py at CI size: every figure printed, measured on the CPU."""
    from bench import gpu

    args = ["--preset", "tiny", "--frames", "5", "--size", "64x64", "--device", "cpu"]
    results = gpu.main(args)
    out = capsys.readouterr().out
    assert "device=cpu" in out and "1 torch threads" in out
    for branches in (1, 4):
        assert f"branches={branches} steps=35 guidance=3:" in out
        assert f"branches={branches} steps= 4 guidance=0:" in out
    assert out.count("(measured;") == 4
    assert "attention=auto " in out and results["attention"][0]["s_per_step"] > 0
    for mode in ("none", "model_offload", "group_offload", "vae_tiling"):
        assert f"memory={mode} " in out
    assert "n/a on cpu" in out
    assert all(row["s_per_chunk"] > 0 for row in results["timings"])
