# Run inside one backend replica (python3 -c, digits on stdin): is it ready, which model does it serve, and how
# many of the gate's real MNIST digits does it classify correctly, raw through the batch endpoint and drawn (PNG
# files, as users send them) through /api/v1/predict/image, the preprocessing included? Prints one JSON object;
# stdlib only. The digits are mnist_deploy/gate.py's.
import base64
import json
import os
import sys
import urllib.error
import urllib.request

# docker exec runs this with the replica's environment: MNIST_PORT is the port compose gave it.
BASE = "http://127.0.0.1:" + os.environ.get("MNIST_PORT", "8000")


def call(path, body=None, data=None, content_type="application/json"):
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, headers={"Content-Type": content_type})
    # bandit B310: a fixed http://127.0.0.1 URL
    with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310
        return json.load(response)


def drawn_answer(png):
    """The digit the replica reads in PNG (a multipart upload, as a browser sends it); -1 when it finds none (422)."""
    boundary = "mnist-gate-boundary"
    data = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="digit.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    try:
        return call("/api/v1/predict/image", data=data, content_type=f"multipart/form-data; boundary={boundary}")[
            "digit"
        ]
    except urllib.error.HTTPError as exc:
        if exc.code == 422:
            return -1
        raise


digits = json.load(sys.stdin)
pixels = base64.b64decode(digits["pixels_base64"])
count = digits["shape"][0]
images = [[b / 255 for b in pixels[i * 784 : (i + 1) * 784]] for i in range(count)]
drawn = digits.get("drawn", [])
result = {"ready": False, "version": None, "accuracy": 0.0, "digits": count, "drawn_accuracy": 0.0, "drawn": len(drawn)}
try:
    result["ready"] = call("/ready")["status"] == "ready"
    result["version"] = call("/api/v1/model")["version"]
    predictions = call("/api/v1/predict/batch", {"images": images})["predictions"]
    correct = sum(p["digit"] == label for p, label in zip(predictions, digits["labels"], strict=True))
    result["accuracy"] = correct / count
    if drawn:
        right = sum(drawn_answer(base64.b64decode(d["png_base64"])) == d["label"] for d in drawn)
        result["drawn_accuracy"] = right / len(drawn)
except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
    result["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(result))
