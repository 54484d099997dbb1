"""Reference (b): a bare FastAPI endpoint that takes the same JSON body and returns a constant."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()
ANSWER = {"digit": 7, "probabilities": [0.0] * 6 + [1.0] + [0.0] * 3, "model_version": "bare"}


@app.post("/api/v1/predict")
async def predict(body: dict) -> dict:
    return ANSWER
