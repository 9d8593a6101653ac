"""Layer 1: the model catalog (aliases, dated snapshots, prices, where weights live)."""
