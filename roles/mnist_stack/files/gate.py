# Run inside one backend replica (python3 -c, digits on stdin, the replicas to gate as ADDRESS:PORT arguments on
# the stack's internal network; none: this replica): is each ready, which model does it serve, and how many of the
# gate's real MNIST digits does it classify correctly, raw through the batch endpoint and drawn (PNG files, as users
# send them) through /api/v1/predict/image, the preprocessing included? The replicas are asked at once, each on
# its own thread: a host's gate takes one replica's time and one round trip. Prints a JSON list, one object per
# replica in the order given; stdlib only. The digits are mnist_deploy/gate.py's.
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

# docker exec runs this with the replica's environment: MNIST_PORT is the port compose gave it.
OWN = "127.0.0.1:" + os.environ.get("MNIST_PORT", "8000")


def call(base, path, body=None, data=None, content_type="application/json"):
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": content_type})
    # bandit B310: http:// on the stack's internal network, addresses the deploy gave
    with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310
        return json.load(response)


def drawn_answer(base, png):
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
        return call(base, "/api/v1/predict/image", data=data, content_type=f"multipart/form-data; boundary={boundary}")[
            "digit"
        ]
    except urllib.error.HTTPError as exc:
        if exc.code == 422:
            return -1
        raise


def gate(replica, images, labels, drawn):
    """What REPLICA (ADDRESS:PORT) answers to the gate's digits."""
    base = "http://" + replica
    count = len(images)
    result = {
        "replica": replica,
        "ready": False,
        "version": None,
        "accuracy": 0.0,
        "digits": count,
        "drawn_accuracy": 0.0,
        "drawn": len(drawn),
    }
    try:
        result["ready"] = call(base, "/ready")["status"] == "ready"
        result["version"] = call(base, "/api/v1/model")["version"]
        predictions = call(base, "/api/v1/predict/batch", {"images": images})["predictions"]
        correct = sum(p["digit"] == label for p, label in zip(predictions, labels, strict=True))
        result["accuracy"] = correct / count
        if drawn:
            right = sum(drawn_answer(base, base64.b64decode(d["png_base64"])) == d["label"] for d in drawn)
            result["drawn_accuracy"] = right / len(drawn)
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def main():
    digits = json.load(sys.stdin)
    pixels = base64.b64decode(digits["pixels_base64"])
    count = digits["shape"][0]
    images = [[b / 255 for b in pixels[i * 784 : (i + 1) * 784]] for i in range(count)]
    replicas = sys.argv[1:] or [OWN]
    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        answers = pool.map(lambda r: gate(r, images, digits["labels"], digits.get("drawn", [])), replicas)
        print(json.dumps(list(answers)))


if __name__ == "__main__":
    main()
