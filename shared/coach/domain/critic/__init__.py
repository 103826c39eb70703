"""The offline critic: measures a story's style and writes a second-person critique from the figures.

It is the embedded default critique provider: deterministic, no network, no keys, no model weights,
and it names itself (OFFLINE_MODEL) as the model in every record it produces.
"""

from coach.domain.critic.report import StyleNote, StyleReport, analyse_style
from coach.domain.critic.writer import OFFLINE_MODEL, write_critique

__all__ = ["OFFLINE_MODEL", "StyleNote", "StyleReport", "analyse_style", "write_critique"]
