"""Label-free accuracy while labels are late: confidence-based performance estimation.

Between a prediction and its label the metrics are blind. A classifier's served probabilities
say how often it expects to be right: the expected accuracy of one prediction is the probability
it gave to the class it predicted, and its expected log loss is the loss it would suffer if the
label were drawn from the distribution it served (NannyML's CBPE does this for batches). Averaged
over the predictions still waiting for their label (the *pending window*) this estimates the
accuracy the labels will show, before they come.

**What it assumes.** That the served probabilities are calibrated: of the predictions served
with confidence 0.8, 80 % are right. Models are often over- or under-confident, so the estimate
corrects the confidence with what the labels taught so far: a reliability table of ``n_bins``
confidence bins, each keeping the recent mean of (right - confidence) over the labelled
predictions that fell in it (exponential forgetting with memory ``calibration_window``, shrunk
towards no correction by ``prior`` pseudo-labels). The correction is as old as the labels are late,
so the estimate also assumes that the model's calibration changed little since the last labels
arrived. It cannot see a concept drift that leaves the model's confidence unchanged (the same
inputs now have other labels): there the estimate stays high while the realised accuracy falls,
and its error, measured once the labels arrive, shows it.

**How wrong it was.** Each prediction's estimate is frozen when it is served. When its label
arrives, its estimate and its outcome enter a rolling window of the last ``window_size``
labelled predictions, so the estimated and the realised rolling accuracy are over the same
predictions; ``abs_error`` is their distance now and ``mae`` its mean over every label since the
window first filled.

Classification only (a regression model serves no probabilities: nothing is estimated). Each
served prediction and each label costs O(1): queued, then applied in batches in the same order
(the numbers are those of applying each at once). In the ``lr`` model step it adds 2-3 µs per
event to 18-42 µs (``python -m benchmarks.estimate --cost``).

Parameters
----------
window_size
    Labelled predictions in the rolling window that compares estimate and outcome.
n_bins
    Bins of the served confidence (the predicted class's probability) in the reliability table.
calibration_window
    Memory of each bin's correction, in labels of that bin (weights decay by
    ``1 - 1 / calibration_window`` per label).
prior
    Pseudo-labels with no correction in each bin: a bin's correction is
    ``sum(right - confidence) / (weight + prior)``.
calibrate
    Correct the confidence with the reliability table (False: plain CBPE, trusts the model).

Examples
--------
A model that says 0.9 and is right 60 % of the time:

>>> plain, corrected = ConfidenceEstimate(calibrate=False), ConfidenceEstimate(window_size=100)
>>> for est in (plain, corrected):
...     for i in range(1000):
...         est.update_served(i, True, {True: 0.9, False: 0.1})
...         est.update_label(i, i % 5 < 3)
...     for i in range(1000, 1010):  # served, labels not yet in
...         est.update_served(i, True, {True: 0.9, False: 0.1})
>>> corrected.n_pending, round(plain.get()["estimated_accuracy"], 2)
(10, 0.9)
>>> round(corrected.get()["estimated_accuracy"], 2), round(corrected.get()["mae"], 2)
(0.61, 0.02)
"""

from __future__ import annotations

import math
from typing import Any

_EPS = 1e-15  # probabilities clamped as River's log loss clamps them
_MAX_LOSS = -math.log(_EPS)


class ConfidenceEstimate:
    """Estimated accuracy and log loss of the served predictions waiting for their label."""

    def __init__(
        self,
        window_size: int = 1000,
        n_bins: int = 20,
        calibration_window: int = 1000,
        prior: float = 20.0,
        calibrate: bool = True,
    ):
        self.window_size = window_size
        self.n_bins = n_bins
        self.calibration_window = calibration_window
        self.prior = prior
        self.calibrate = calibrate
        self._reset()

    def _reset(self) -> None:
        self._queue: list[tuple] = []  # updates not applied yet (see BATCH)
        # event id -> (y_pred, confidence, estimated accuracy, estimated log loss)
        self._pending: dict[Any, tuple] = {}
        self._pending_accuracy = 0.0  # sums over the pending predictions
        self._pending_log_loss = 0.0
        n = self.n_bins
        self._residual = [0.0] * n  # decayed sum of (right - confidence) per bin
        self._weight = [0.0] * n  # decayed number of labels per bin
        # the correction per bin, and once more for a confidence of exactly 1 (bin n)
        self._correction = [0.0] * (n + 1)
        self._decay = 1.0 - 1.0 / self.calibration_window
        # the last window_size labelled predictions, a ring: estimated accuracy when served,
        # and right (1.0) or wrong (0.0); and the sums of both
        self._ring_estimated = [0.0] * self.window_size
        self._ring_right = [0.0] * self.window_size
        self._position = 0
        self._sum_estimated = 0.0
        self._sum_right = 0.0
        self._abs_error_sum = 0.0  # of |sum_estimated - sum_right|, once the ring is full
        self._n_abs_error = 0
        self._n_labelled = 0

    def pending_table(self) -> dict:
        """The estimates of the predictions waiting for their label, by event id (grows with
        them, as the learner's served table does)."""
        self._flush()
        return self._pending

    def correction(self, confidence: float) -> float:
        """What the labels so far add to a served ``confidence`` (0 without calibration)."""
        self._flush()
        return self._correction[int(confidence * self.n_bins)]

    # The public updates only queue what happened; ``_flush`` applies the queue in order, every
    # BATCH records and before anything reads the state. The result is the same as applying each
    # at once (the order is kept), but the work runs in one loop over local variables: in the lr
    # model step (python -m benchmarks.estimate --cost) about 1.5 us/event less than one by one.
    BATCH = 512

    def update_served(self, event_id: Any, y_pred: Any, proba: dict) -> None:
        """A prediction was served for ``event_id``: ``y_pred`` with probabilities ``proba``."""
        queue = self._queue
        queue.append((event_id, y_pred, proba))
        if len(queue) >= self.BATCH:
            self._flush()

    def update_label(self, event_id: Any, y: Any) -> None:
        """The label of ``event_id`` arrived: score the estimate made when it was served, and
        learn the calibration. A label for an event never served (or forgotten) is ignored."""
        queue = self._queue
        queue.append((event_id, y))
        if len(queue) >= self.BATCH:
            self._flush()

    def forget(self, event_id: Any) -> None:
        """The label of ``event_id`` will never come (TTL expired)."""
        self._queue.append((event_id,))

    def _flush(self) -> None:
        """Apply the queued updates in order (one loop, the state in local variables)."""
        queue = self._queue
        if not queue:
            return
        log, fsum = math.log, math.fsum
        pending = self._pending
        pending_accuracy, pending_log_loss = self._pending_accuracy, self._pending_log_loss
        n_bins, calibrate, decay, prior = self.n_bins, self.calibrate, self._decay, self.prior
        top = n_bins - 1
        residuals, weights, corrections = self._residual, self._weight, self._correction
        size = self.window_size
        ring_estimated, ring_right, i = self._ring_estimated, self._ring_right, self._position
        sum_estimated, sum_right = self._sum_estimated, self._sum_right
        abs_error_sum, n_abs_error, n_labelled = self._abs_error_sum, self._n_abs_error, self._n_labelled
        for record in queue:
            kind = len(record)
            if kind == 3:  # served: its estimate, frozen until its label
                event_id, y_pred, proba = record
                p = proba.get(y_pred)
                if p is None:
                    continue
                acc = p + corrections[int(p * n_bins)]
                acc = 0.0 if acc < 0.0 else 1.0 if acc > 1.0 else acc
                # the expected loss if the predicted class is right with probability acc and
                # the others share 1 - acc as the served distribution shares them
                right = -log(p) if p > _EPS else _MAX_LOSS
                q = 1.0 - p
                if q <= _EPS:
                    wrong = _MAX_LOSS
                elif len(proba) == 2:
                    wrong = -log(q)
                else:
                    wrong = sum(-r * log(r) for k, r in proba.items() if k != y_pred and r > _EPS) / q
                log_loss = right + (1.0 - acc) * (wrong - right)
                old = pending.get(event_id)
                if old is not None:  # served again before its label: the new one counts
                    pending_accuracy -= old[2]
                    pending_log_loss -= old[3]
                pending[event_id] = (y_pred, p, acc, log_loss)
                pending_accuracy += acc
                pending_log_loss += log_loss
                continue
            entry = pending.pop(record[0], None)
            if entry is None:  # never served, or forgotten: nothing to score
                continue
            y_pred, p, acc, log_loss = entry
            if pending:
                pending_accuracy -= acc
                pending_log_loss -= log_loss
            else:  # nothing pending: no float residue either
                pending_accuracy = pending_log_loss = 0.0
            if kind == 1:  # forgotten (TTL): its label will never come
                continue
            # labelled: learn the calibration, score the estimate made when it was served
            right = 1.0 if record[1] == y_pred else 0.0
            if calibrate:
                b = int(p * n_bins)
                if b > top:
                    b = top
                residual = residuals[b] = residuals[b] * decay + (right - p)
                weight = weights[b] = weights[b] * decay + 1.0
                corrections[b] = residual / (weight + prior)
                if b == top:
                    corrections[n_bins] = corrections[b]
            sum_estimated += acc - ring_estimated[i]
            sum_right += right - ring_right[i]
            ring_estimated[i] = acc
            ring_right[i] = right
            i += 1
            if i == size:  # once per turn: no float drift in the running sums
                i = 0
                sum_estimated, sum_right = fsum(ring_estimated), fsum(ring_right)
            n_labelled += 1
            if n_labelled >= size:
                abs_error_sum += abs(sum_estimated - sum_right)
                n_abs_error += 1
        queue.clear()
        self._pending_accuracy, self._pending_log_loss = pending_accuracy, pending_log_loss
        self._position, self._sum_estimated, self._sum_right = i, sum_estimated, sum_right
        self._abs_error_sum, self._n_abs_error, self._n_labelled = abs_error_sum, n_abs_error, n_labelled

    @property
    def n_labelled(self) -> int:
        """Labels that scored an estimate."""
        self._flush()
        return self._n_labelled

    @property
    def n_pending(self) -> int:
        self._flush()
        return len(self._pending)

    def get(self) -> dict[str, float]:
        """The numbers, each only once it exists:

        - ``estimated_accuracy``, ``estimated_log_loss``: over the pending predictions;
        - ``pending``: how many;
        - ``estimated_accuracy_rolling`` / ``accuracy_rolling``: estimated when served and
          realised, over the last ``window_size`` labelled predictions;
        - ``abs_error``: the distance of the two now; ``mae``: its mean over the labels since
          the window first filled.
        """
        self._flush()
        n = len(self._pending)
        out: dict[str, float] = {"pending": float(n)}
        if n:
            out["estimated_accuracy"] = min(max(self._pending_accuracy / n, 0.0), 1.0)
            out["estimated_log_loss"] = max(self._pending_log_loss / n, 0.0)
        size = min(self._n_labelled, self.window_size)
        if size:
            estimated, realised = self._sum_estimated / size, self._sum_right / size
            out["estimated_accuracy_rolling"] = estimated
            out["accuracy_rolling"] = realised
            out["abs_error"] = abs(estimated - realised)
        if self._n_abs_error:
            out["mae"] = self._abs_error_sum / self._n_abs_error / self.window_size
        return out
