"""What the layers know: analyses of frozen models (probing classifiers, …).

Probing (:mod:`~bertkit.analysis.probing`): per-layer linear probes with control tasks and
baselines on real data; :mod:`~bertkit.analysis.extract` streams the representations,
:mod:`~bertkit.analysis.tasks` builds the tasks, :mod:`~bertkit.analysis.probe_report` writes
the table, JSON, plot and HTML view.
"""

from bertkit.analysis.linear_probe import LinearProbe, ProbeSettings
from bertkit.analysis.probing import LayerScore, ModelCurve, ProbeResult, probe
from bertkit.analysis.tasks import TASKS as PROBE_TASKS
from bertkit.analysis.tasks import ProbeTask, build_task

__all__ = [
    "PROBE_TASKS",
    "LayerScore",
    "LinearProbe",
    "ModelCurve",
    "ProbeResult",
    "ProbeSettings",
    "ProbeTask",
    "build_task",
    "probe",
]
