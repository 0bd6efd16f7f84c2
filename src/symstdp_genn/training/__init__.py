"""Training: the driver (:mod:`.trainer`), its running accuracy (:mod:`.running`), its
metrics log (:mod:`.metrics`) and how a run is asked to stop (:mod:`.stop`)."""

from .metrics import MetricsLog
from .stop import StopRequest, sigterm_as_interrupt
from .trainer import SNAPSHOT_KEYS, Trainer, TrainingOutcome, network_state

__all__ = ["SNAPSHOT_KEYS", "MetricsLog", "StopRequest", "Trainer", "TrainingOutcome",
           "network_state", "sigterm_as_interrupt"]
