# Run inside one backend replica (python3 -c, digits on stdin): is it ready, which model does it serve, and how
# many of the gate's real MNIST digits does it classify correctly? Prints one JSON object; stdlib only.
import base64
import json
import os
import sys
import urllib.error
import urllib.request

# docker exec runs this with the replica's environment: MNIST_PORT is the port compose gave it.
BASE = "http://127.0.0.1:" + os.environ.get("MNIST_PORT", "8000")


def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, headers={"Content-Type": "application/json"})
    # bandit B310: a fixed http://127.0.0.1 URL
    with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310
        return json.load(response)


digits = json.load(sys.stdin)
pixels = base64.b64decode(digits["pixels_base64"])
count = digits["shape"][0]
images = [[b / 255 for b in pixels[i * 784 : (i + 1) * 784]] for i in range(count)]
result = {"ready": False, "version": None, "accuracy": 0.0, "digits": count}
try:
    result["ready"] = call("/ready")["status"] == "ready"
    result["version"] = call("/api/v1/model")["version"]
    predictions = call("/api/v1/predict/batch", {"images": images})["predictions"]
    correct = sum(p["digit"] == label for p, label in zip(predictions, digits["labels"], strict=True))
    result["accuracy"] = correct / count
except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
    result["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(result))
