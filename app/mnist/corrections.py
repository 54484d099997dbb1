"""Users' corrections as a document: what `invoke backup` keeps, `invoke restore` brings back and
`invoke train --with-feedback` learns from. One format, read and written here, for the backend and training."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

FORMAT = "mnist-feedback-backup/1"
IMAGE_BYTES = 28 * 28


class CorrectionsError(ValueError):
    """Not a corrections document: the reason is the message."""


@dataclass(frozen=True)
class Correction:
    prediction_id: str
    created_at: datetime
    predicted_digit: int
    right_digit: int
    model_version: str
    image: bytes  # the 28x28 image the model received, 0-255, row-major


@dataclass(frozen=True)
class Corrections:
    items: list[Correction] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def images(self) -> np.ndarray:
        """uint8 (N, 28, 28)."""
        if not self.items:
            return np.zeros((0, 28, 28), np.uint8)
        return np.stack([np.frombuffer(c.image, np.uint8).reshape(28, 28) for c in self.items])

    @property
    def right(self) -> np.ndarray:
        return np.array([c.right_digit for c in self.items], dtype=np.int64)

    @property
    def predicted(self) -> np.ndarray:
        return np.array([c.predicted_digit for c in self.items], dtype=np.int64)

    def merged(self, other: Corrections) -> Corrections:
        """Both sets, each prediction once (hosts restored from one backup hold the same corrections)."""
        seen = {c.prediction_id for c in self.items}
        return Corrections(self.items + [c for c in other.items if c.prediction_id not in seen])

    def dumps(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "corrections": [
                    {
                        "prediction_id": c.prediction_id,
                        "created_at": c.created_at.isoformat(),
                        "predicted_digit": c.predicted_digit,
                        "right_digit": c.right_digit,
                        "model_version": c.model_version,
                        "image": base64.b64encode(c.image).decode(),
                    }
                    for c in self.items
                ],
            }
        )


def loads(document: str | bytes) -> Corrections:
    """Parse a corrections document; CorrectionsError names what is wrong, and nothing is half-read."""
    try:
        parsed = json.loads(document)
        if not isinstance(parsed, dict) or parsed.get("format") != FORMAT:
            raise CorrectionsError(f"not a {FORMAT} document")
        items = [
            Correction(
                prediction_id=str(entry["prediction_id"]),
                created_at=datetime.fromisoformat(entry["created_at"]),
                predicted_digit=int(entry["predicted_digit"]),
                right_digit=int(entry["right_digit"]),
                model_version=str(entry["model_version"]),
                image=base64.b64decode(entry["image"], validate=True),
            )
            for entry in parsed["corrections"]
        ]
    except CorrectionsError:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise CorrectionsError(f"not a corrections document: {exc!r}") from None
    for item in items:
        if len(item.image) != IMAGE_BYTES:
            raise CorrectionsError(f"correction {item.prediction_id}: the image is {len(item.image)} bytes, not 28x28")
        if not (0 <= item.right_digit <= 9 and 0 <= item.predicted_digit <= 9):
            raise CorrectionsError(f"correction {item.prediction_id}: a digit out of 0-9")
    return Corrections(items)
