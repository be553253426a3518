"""Training the default model: procedural scenes, their controls and Cycles targets, the trainer."""
