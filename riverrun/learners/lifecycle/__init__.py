"""The model lifecycle, pure: champion, challengers, checkpoints, drift, rollback, promotion.

The champion serves. Challengers (other recipes, and a fresh model started at a drift warning)
see the same traffic in shadow, are scored on the same labels and never serve. Checkpoints are
frozen copies of the champion taken every ``checkpoint_every`` labels while healthy, before any
risky transition, on a covariate-shift alarm and on demand; the last ``keep_checkpoints`` stay in
memory (frozen: they never learn) so they can be compared.

On concept drift (ADWIN by default, on the champion's served-prediction errors, when the error
rose) the lifecycle first judges the labels buffered since the warning (``_decide_at_drift``):
inverted labels (a binary champion nearly always wrong) roll back to the last healthy checkpoint
and *pause learning* until the labels agree with it again (``pause``). Otherwise candidates
(challengers, the fresh model started at the warning, checkpoints) are judged against the
champion on the same labels by the decision rule (``decision.PairedDecision``): an anytime-valid
paired sequential test per candidate (``sequential.PairedTest``, false-alarm rate ``alpha``) on
the per-label 0/1 losses, looked at after every label, for at most ``decision_window`` labels; a
candidate it finds better by ``min_improvement``, with a log loss no worse, is rolled back to (a
checkpoint: the champion was damaged) or promoted (a challenger: the world changed); none: keep.
A drift alarm alone replaces nothing, and a champion that adapts by itself (HAT, ARF, ADWIN
bagging) gets no fresh challenger and is not rolled back to its checkpoints at a drift. Every
action has a cool-down and a cap per window, and is a ``ModelEvent`` whose ``compared`` holds
what each test saw.

Every decision is reversible (``probation``): the displaced model learns in shadow for
``probation`` labels and serves again if the test finds it better than its successor (or it made
fewer errors, by a sign test, when the probation ends). From the first action on, the champion
as it would be with no lifecycle (the *counterfactual*) learns in shadow too; it is adopted when
the test finds it better than what the lifecycle serves, retired once beaten for a probation,
and ``ModelLifecycle.regret()`` is the accuracy lost against it (``riverrun_lifecycle_regret``).
Covariate shift (PSI/KS/chi-square on the features), prior shift (labels) and prediction drift
only alert and checkpoint: label-free evidence never rolls back.

Everything here is deterministic given the stream, so a replay decides exactly as live did.

``policy.py`` holds ``PolicyConfig``; ``model.py`` ``ModelLifecycle`` (serving, learning,
deciding), made of parts in their own modules: ``checkpoints.py`` (checkpoints, the operator's
rollback), ``pause.py`` (suspect labels), ``probation.py`` (the displaced model and the
counterfactual, ``shadow.py`` their models), ``events.py``, ``monitors.py`` (label-free
monitors), ``changepoint.py``; the rule is ``decision.py``, its test ``sequential.py``. Every
name is importable from here, as before they were split.

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
from riverrun.learners.lifecycle.decision import PairedDecision, Verdict
from riverrun.learners.lifecycle.model import CHAMPION, Evaluation, ModelLifecycle, labels_since_change
from riverrun.learners.lifecycle.policy import PolicyConfig
from riverrun.learners.lifecycle.sequential import PairedTest

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
    "PairedDecision",
    "PairedTest",
    "PolicyConfig",
    "Verdict",
    "labels_since_change",
]
