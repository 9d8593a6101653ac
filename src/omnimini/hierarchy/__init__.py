"""Layer 2: messages become a privileged, rendered conversation (system > user > assistant > tool)."""
