"""Early stopping and reduce-on-plateau over the validation scores of a training run.

Its whole state is a plain dict (kept in state.json), so a resumed run continues the same count.
"""

FIELDS = ("best", "best_epoch", "wait", "plateau_wait", "lr", "stopped_early")   # its part of state.json


class Monitor:
    """`mode` max/min: which direction improves. After `patience` epochs without a better score
    training stops; after `plateau_patience` such epochs (0: never) the learning rate is
    multiplied by `plateau_factor`, never below `min_lr`. A NaN score never improves."""

    def __init__(self, mode, patience, *, lr, plateau_patience=0, plateau_factor=0.1, min_lr=0.0, state=None):
        if mode not in ("max", "min"):
            raise ValueError(f"monitor mode {mode!r}: max or min")
        self.mode, self.patience = mode, int(patience)
        self.plateau_patience, self.plateau_factor, self.min_lr = int(plateau_patience), plateau_factor, min_lr
        self.state = dict(state) if state else {"best": None, "best_epoch": 0, "wait": 0, "plateau_wait": 0,
                                                "lr": float(lr), "stopped_early": False}

    def better(self, value):
        """Whether `value` improves on the best so far (nothing yet: any number does)."""
        best = self.state["best"]
        if value != value:
            return False
        return best is None or (value > best if self.mode == "max" else value < best)

    def update(self, epoch, value):
        """Record epoch `epoch`'s score; returns (improved, new learning rate or None)."""
        s = self.state
        if self.better(value):
            s.update(best=float(value), best_epoch=int(epoch), wait=0, plateau_wait=0)
            return True, None
        s["wait"] += 1
        s["plateau_wait"] += 1
        s["stopped_early"] = s["wait"] >= self.patience
        if self.plateau_patience and s["plateau_wait"] >= self.plateau_patience and s["lr"] > self.min_lr:
            s.update(lr=max(self.min_lr, s["lr"] * self.plateau_factor), plateau_wait=0)
            return False, s["lr"]
        return False, None
