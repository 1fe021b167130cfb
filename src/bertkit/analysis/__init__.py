"""What the layers know: analyses of frozen and trained models.

Probing (:mod:`~bertkit.analysis.probing`): per-layer linear probes with control tasks and
baselines on real data; :mod:`~bertkit.analysis.extract` streams the representations,
:mod:`~bertkit.analysis.tasks` builds the tasks, :mod:`~bertkit.analysis.probe_report` writes
the table, JSON, plot and HTML view. Attention heads (:mod:`~bertkit.analysis.heads`): what
each head looks at; :mod:`~bertkit.analysis.pruning`: head importance and real pruning.
"""

from bertkit.analysis.heads import HeadStatistics, head_statistics, read_sentences
from bertkit.analysis.linear_probe import LinearProbe, ProbeSettings
from bertkit.analysis.probing import LayerScore, ModelCurve, ProbeResult, probe
from bertkit.analysis.pruning import head_importance, prune_least_important
from bertkit.analysis.tasks import TASKS as PROBE_TASKS
from bertkit.analysis.tasks import ProbeTask, build_task

__all__ = [
    "PROBE_TASKS",
    "HeadStatistics",
    "LayerScore",
    "LinearProbe",
    "ModelCurve",
    "ProbeResult",
    "ProbeSettings",
    "ProbeTask",
    "build_task",
    "head_importance",
    "head_statistics",
    "probe",
    "prune_least_important",
    "read_sentences",
]
