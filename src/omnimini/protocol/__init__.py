"""Layer 0: the wire types of the OpenAI API, validated once at the edge. Imports nothing of ours."""
