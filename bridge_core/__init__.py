"""cosmos-transfer-bridge core: datasets, controls, weight maps, job specs, CLI."""
