"""The quality gate: network-free checks of every generated clip, the verdict, the VLM critic."""
