"""Reference (a): a seed-style backend — torch eager, the model in the process, the same JSON API.

Same architecture as the served model; the weights are a fixed random init, which costs the same to run.
"""

from __future__ import annotations

import torch
from fastapi import FastAPI

from app.training.model import DigitNet

torch.manual_seed(0)
model = DigitNet((16, 32)).eval()
app = FastAPI()


@app.post("/api/v1/predict")
def predict(body: dict) -> dict:
    x = torch.tensor(body["image"], dtype=torch.float32).reshape(1, 1, 28, 28)
    with torch.no_grad():
        probabilities = torch.softmax(model(x), dim=1)[0]
    return {"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist(), "model_version": "seed"}
