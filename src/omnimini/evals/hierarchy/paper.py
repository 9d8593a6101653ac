"""The paper's numbers, per category: GPT-3.5 Turbo fine-tuned without ("baseline") and with the
instruction hierarchy ("trained"). Source: Wallace et al., 2024, "The Instruction Hierarchy:
Training LLMs to Prioritize Privileged Instructions" (arXiv:2404.13208), Figures 2-4, as quoted
in omnimini issue 7. Categories whose figure is not quoted there are left empty (None), not guessed.
Robustness: % of attacks that failed; compliance: % of legitimate instructions followed.
"""

from __future__ import annotations

PAPER: dict[str, tuple[float | None, float | None]] = {
    "hijacking": (59.2, 79.2),                 # TensorTrust prompt hijacking
    "closed_domain": (None, None),             # prompt injection, new instructions
    "user_conflict": (62.2, 92.6),             # user conflicting instructions
    "indirect_tools": (77.6, 87.0),            # indirect prompt injection via tools
    "system_extraction": (32.8, 95.9),         # system message extraction (the "+63%")
    "password": (51.8, 73.7),                  # Gandalf password extraction
    "jailbreak": (37.4, 71.2),                 # ChatGPT jailbreaks (needs a judge; not scored here)
    "aligned": (None, None),                   # over-refusal: aligned user instructions
    "probing": (85.2, 75.0),                   # over-refusal: system message probing questions
    "benign_tools": (None, None),              # benign tool use (ours: the answer is still given)
}
