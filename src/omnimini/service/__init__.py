"""Layer 3: the one pipeline. Every way of asking a model for text goes through here."""
