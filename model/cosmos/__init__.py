"""Cosmos-Transfer2.5: configs, fusion, sampling, loading, prompts, guardrail."""
