"""omnimini: a self-hosted GPT-4o-mini-class model service behind the OpenAI API."""

__version__ = "0.1.0"
