"""Training pairs: procedural warehouse layouts, capture controls and Cycles-rendered targets."""
