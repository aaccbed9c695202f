"""Citizen petitions: complaints, denunciations, recommendations/feedback and voters' petitions.

`decide(state, command, actor, now)` turns a command into events or refuses it with a `DomainError`;
`evolve(state, event)` applies one event; the state of a case is `fold(evolve, events)`.
"""

from ..deadlines import CaseRules, DeadlineState
from .commands import COMMAND_TYPES, CommandRequest, PetitionCommand
from .decider import decide, evolve, fold
from .events import REGISTRY
from .model import (
    Petitioner,
    PetitionIntake,
    PetitionKind,
    PetitionState,
    PetitionStatus,
)

__all__ = [
    "COMMAND_TYPES",
    "REGISTRY",
    "CaseRules",
    "CommandRequest",
    "DeadlineState",
    "PetitionCommand",
    "PetitionIntake",
    "PetitionKind",
    "PetitionState",
    "PetitionStatus",
    "Petitioner",
    "decide",
    "evolve",
    "fold",
]
