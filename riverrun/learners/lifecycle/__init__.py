"""The model lifecycle, pure: champion, challengers, checkpoints, drift, rollback, promotion.

The champion serves. Challengers (other recipes, and a fresh model started at a drift warning)
see the same traffic in shadow, are scored on the same labels and never serve. Checkpoints are
frozen copies of the champion taken every ``checkpoint_every`` labels while healthy, before any
risky transition, on a covariate-shift alarm and on demand; the last ``keep_checkpoints`` stay in
memory (frozen: they never learn) so they can be compared.

On concept drift (ADWIN by default, on the champion's served-prediction errors, when the error
rose) the lifecycle first decides at once if the buffered labels since the warning suffice
(``_decide_at_drift``): inverted labels (a binary champion nearly always wrong) roll back to the
last healthy checkpoint and *pause learning* until the labels agree with it again; a checkpoint
that clearly beats the champion is rolled back to; a fresh challenger that beat the champion and
every checkpoint is promoted. Otherwise it *evaluates*: for the next ``decision_window`` labels
it scores every candidate (champion, challengers, checkpoints) on the same labels, then acts on
the evidence: roll back to a checkpoint (the champion was damaged), promote a challenger (the
world changed), or keep. Every action has a cool-down and a cap per window, and is a
``ModelEvent``.
Covariate shift (PSI/KS/chi-square on the features), prior shift (labels) and prediction drift
only alert and checkpoint: label-free evidence never rolls back.

Everything here is deterministic given the stream, so a replay decides exactly as live did.

``policy.py`` holds ``PolicyConfig``, ``checkpoints.py`` the checkpoints, ``model.py``
``ModelLifecycle``; every name is importable from here, as before they were split.

>>> from river import datasets
>>> lc = ModelLifecycle("m", "lr", PolicyConfig(checkpoint_every=100))
>>> events = []
>>> for i, (x, y) in enumerate(list(datasets.Phishing())[:250]):
...     _ = lc.predict(str(i), x)
...     events += lc.learn(str(i), x, y, ts=None)
>>> [e.action for e in events if not isinstance(e, Checkpoint)]
['checkpoint', 'checkpoint']
"""

from riverrun.learners.lifecycle.checkpoints import Checkpoint, FrozenCheckpoint
from riverrun.learners.lifecycle.model import CHAMPION, Evaluation, ModelLifecycle, labels_since_change
from riverrun.learners.lifecycle.policy import PolicyConfig

# Pickles (recovery snapshots) written before this was a package name these classes by the
# names they had in riverrun/learners/lifecycle.py.
_Frozen = FrozenCheckpoint
_Evaluation = Evaluation

__all__ = [
    "CHAMPION",
    "Checkpoint",
    "Evaluation",
    "FrozenCheckpoint",
    "ModelLifecycle",
    "PolicyConfig",
    "labels_since_change",
]
