"""Which model serves: registering a model never moves `current`; promoting it does, when it beats the current one.

A candidate beats the current model when, scored by the same robustness suite (same digits, same preprocessing), its
mean accuracy over the conditions is higher, no condition drops by more than CONDITION_DROP, and its clean MNIST
test accuracy drops by no more than TEST_DROP. Otherwise it is promoted only with a reason, which the promotion
record keeps. Every promotion is appended to `<store>/promotions.jsonl`: who was replaced, the comparison, the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.mnist import store

TEST_DROP = 0.001  # 10 of MNIST's 10,000 test images
CONDITION_DROP = 0.02  # 10 of the suite's 500 digits: above the noise of two models scored on the same digits
RECORD = "promotions.jsonl"

Scorer = Callable[[store.StoredModel], dict[str, Any]]  # a model → its robustness report (robustness.report)


class PromotionError(store.ModelStoreError):
    """The model cannot be promoted; the message says why and what would allow it."""


@dataclass
class Comparison:
    candidate: str
    current: str
    test: tuple[float, float]  # (candidate, current)
    suite_mean: tuple[float, float]
    drops: dict[str, tuple[float, float]] = field(default_factory=dict)  # conditions that dropped too far

    @property
    def reasons_against(self) -> list[str]:
        reasons = []
        if self.suite_mean[0] <= self.suite_mean[1]:
            reasons.append(
                f"its suite mean {self.suite_mean[0]:.2%} is not above the current model's {self.suite_mean[1]:.2%}"
            )
        if self.test[0] < self.test[1] - TEST_DROP:
            reasons.append(
                f"its clean test accuracy {self.test[0]:.2%} is below the current model's {self.test[1]:.2%}"
            )
        for name, (ours, theirs) in self.drops.items():
            reasons.append(f"{name} drops from {theirs:.1%} to {ours:.1%}")
        return reasons

    @property
    def beats(self) -> bool:
        return not self.reasons_against

    def as_dict(self) -> dict[str, Any]:
        return {
            "test_accuracy": {"candidate": self.test[0], "current": self.test[1]},
            "suite_mean": {"candidate": round(self.suite_mean[0], 4), "current": round(self.suite_mean[1], 4)},
            "drops": {name: {"candidate": a, "current": b} for name, (a, b) in self.drops.items()},
            "beats": self.beats,
        }


def suite_mean(report: dict[str, Any]) -> float:
    conditions = report["conditions"]
    return sum(row["accuracy"] for row in conditions.values()) / len(conditions)


def comparable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two reports scored the same digits through the same preprocessing and conditions."""
    keys = ("digits", "seed", "preprocessing_version")
    return all(a.get(k) == b.get(k) for k in keys) and set(a["conditions"]) == set(b["conditions"])


def compare(candidate: store.StoredModel, current: store.StoredModel, reports: tuple[dict, dict]) -> Comparison:
    ours, theirs = reports
    drops = {
        name: (row["accuracy"], theirs["conditions"][name]["accuracy"])
        for name, row in ours["conditions"].items()
        if row["accuracy"] < theirs["conditions"][name]["accuracy"] - CONDITION_DROP
    }
    return Comparison(
        candidate=candidate.version,
        current=current.version,
        test=(float(candidate.metadata["test_accuracy"]), float(current.metadata["test_accuracy"])),
        suite_mean=(suite_mean(ours), suite_mean(theirs)),
        drops=drops,
    )


def promote(root: Path, version: str, score: Scorer, reason: str = "", *, now: str | None = None) -> Comparison | None:
    """Point `current` at VERSION if it beats the current model (or REASON says why anyway); return the comparison
    (None when the store had no current model). SCORE runs the suite on a model whose recorded report is missing or
    not comparable with the other's."""
    candidate = store.load(root, version)
    current_version = store.current_version(root) if (root / store.CURRENT_FILE).is_file() else None
    comparison, suites = None, None
    if current_version == candidate.version:
        raise PromotionError(f"model {version[:12]} is already the current model")
    if current_version is not None:
        current = store.load(root, current_version)
        ours, theirs = candidate.metadata.get("robustness"), current.metadata.get("robustness")
        if ours is None or theirs is None or not comparable(ours, theirs):
            ours, theirs = score(candidate), score(current)
        comparison = compare(candidate, current, (ours, theirs))
        suites = {"candidate": ours, "current": theirs}
        if not comparison.beats and not reason:
            raise PromotionError(
                f"model {version[:12]} does not beat the current model {current.version[:12]}: "
                + "; ".join(comparison.reasons_against)
                + ' (promote it anyway with --reason "why", which the promotion record keeps)'
            )
    store.set_current(root, candidate.version)
    entry = {
        "time": now or datetime.now(UTC).isoformat(timespec="seconds"),
        "version": candidate.version,
        "replaced": current_version,
        "comparison": comparison.as_dict() if comparison else None,
        "suites": suites,  # each condition's figures, as compared
        "reason": reason or None,
    }
    with (root / RECORD).open("a") as record:
        record.write(json.dumps(entry, sort_keys=True) + "\n")
    return comparison
