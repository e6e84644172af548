"""``PolicyConfig``: when the lifecycle checkpoints and how it judges candidates."""

from __future__ import annotations

from dataclasses import dataclass

from riverrun.detectors.concept import Method


@dataclass(frozen=True)
class PolicyConfig:
    """When to checkpoint and how to judge candidates. ``enabled=False`` is River alone.

    The ``[flow.policy]`` settings table is built from these fields and defaults
    (``riverrun.streams.settings.PolicySettings``).

    Parameters
    ----------
    enabled
        The lifecycle at all; ``False``: the champion alone, as River's ``progressive_val_score``.
    challengers
        Recipes run in shadow next to the champion.
    fresh_challenger
        Start a fresh model of the champion's recipe at a drift warning ...
    fresh_patience
        ... and drop it when no drift follows within this many labels.
    concept_detector
        The detector on the champion's errors: ``"adwin"``, ``"hddm_a"`` or ``"kswin"``.
    checkpoint_every
        Labels between checkpoints, while healthy.
    keep_checkpoints
        Checkpoints kept in memory (frozen), scored as candidates.
    decision_window
        Labels after a drift signal on which candidates are compared; none found better by then:
        keep.
    alpha
        The false-alarm rate of each decision: a candidate replaces the champion when an
        anytime-valid paired sequential test (``sequential.PairedTest``: a betting mixture SPRT
        on the per-label 0/1 losses of both on the same labels) finds it better by more than
        ``min_improvement``; a model that wins by luck is switched to with probability at most
        ``alpha``, however long it is watched. The same test brings back a displaced model
        (``probation``) and the counterfactual.
    min_improvement
        The margin of that test: the accuracy a candidate must gain over the champion.
    min_decision
        The labels since the warning on which checkpoints are judged at a drift (at least these
        many of the buffered ones).
    z
        Standard errors for the covariate-shift alert's "did the champion's error move" sentence
        (decisions use ``alpha``).
    decide_at_drift
        First judge on the labels buffered since the warning (``_decide_at_drift``) ...
    min_at_drift
        ... and act on no test that saw fewer labels than this.
    trust_self_adapting
        A champion that adapts by itself (HAT, ARF, ADWIN bagging: any model holding a drift
        detector; ``decision.adapts_by_itself``) gets no fresh challenger at a drift warning (it
        grows its own fresh parts) and is not rolled back to a checkpoint at a drift (its dips
        are its adaptation): a drift alarm alone never replaces it. Inverted labels still pause
        it, and configured ``challengers`` still replace it when the test finds them better.
    suspect_accuracy
        A binary champion this right on the labels since its errors changed (at least
        ``min_at_drift``, at most ``suspect_window``) at a drift, or when a candidate would
        replace it, meets inverted labels: roll back, pause learning. Or right no more than 3
        times its error rate before the change (capped at 0.1): a 90 % model is right on 10 % of
        inverted labels. ``None``: never pause.
    suspect_window
        See ``suspect_accuracy``.
    resume_accuracy
        Resume learning when this share of ``suspect_window`` labels in a row agree ...
    max_pause
        ... or after this many labels (the world itself may have inverted).
    probation
        After a promotion or a rollback the displaced model keeps learning in shadow for this
        many labels, and serves again as soon as the test finds it better than its successor, or
        at the end if it made fewer errors (a sign test at 2 standard deviations on the labels
        where they differ); 0: no probation.
    counterfactual
        From the first action on, run the champion as it would be with no lifecycle in shadow:
        the lifecycle's regret against it is measured (``ModelLifecycle.regret``) and it is
        adopted when the test finds it better than what the lifecycle serves. Until the first
        action it costs nothing (it is the champion); it is retired (and the regret stops
        counting) once the champion beat it on the labels of at least a probation, and the next
        action starts another from its champion.
    cooldown
        Labels after an action before the next decision.
    max_actions
        At most this many rollbacks and promotions ...
    action_window
        ... per this many labels.
    covariate
        PSI/KS/chi-square monitors on the features served on ...
    covariate_exclude
        ... except these: counters and other features whose distribution moves by construction
        would alarm on every stream. The default features' ``entity_event_count`` (events of the
        entity so far, ``riverrun.streams.core.features.COUNTERS``) is one.
    prior
        Monitors on the label and prediction distributions.
    reference_size
        Sampled values forming each distribution monitor's reference.
    monitor_window
        Sampled values in each monitor's sliding window.
    monitor_every
        Distribution monitors see every n-th event and label (a sample) ...
    monitor_batch
        ... the served ones fed this many at a time: their state is then in cache (a sample at a
        time cost about twice as much); alerts come at most
        ``(monitor_batch - 1) * monitor_every`` events later ...
    monitor_check_every
        ... and test every this many sampled values.
    psi_warning
        PSI conventions: < 0.1 stable, 0.1-0.2 moderate, > 0.2 shifted.
    psi_threshold
        See ``psi_warning``.
    ks_alpha
        A KS test on numeric features too; ``None``: PSI alone (far cheaper).
    chi2_alpha
        Significance of the chi-square test on categorical features.
    """

    enabled: bool = True
    challengers: tuple[str, ...] = ()
    fresh_challenger: bool = True
    fresh_patience: int = 100
    concept_detector: Method = "adwin"
    checkpoint_every: int = 2000
    keep_checkpoints: int = 3
    decision_window: int = 1000
    alpha: float = 0.05
    min_improvement: float = 0.02
    min_decision: int = 30
    z: float = 3.0
    decide_at_drift: bool = True
    min_at_drift: int = 10
    trust_self_adapting: bool = True
    suspect_accuracy: float | None = 0.05
    suspect_window: int = 20
    resume_accuracy: float = 0.5
    max_pause: int = 5000
    probation: int = 2000
    counterfactual: bool = True
    cooldown: int = 500
    max_actions: int = 3
    action_window: int = 20_000
    covariate: bool = True
    covariate_exclude: tuple[str, ...] = ("entity_event_count",)
    prior: bool = True
    reference_size: int = 500
    monitor_window: int = 500
    monitor_every: int = 10
    monitor_batch: int = 5
    monitor_check_every: int = 25
    psi_warning: float = 0.1
    psi_threshold: float = 0.2
    ks_alpha: float | None = None
    chi2_alpha: float = 0.01
