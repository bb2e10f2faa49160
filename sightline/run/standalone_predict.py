"""Classify images with this model as sightline predicts them, with ONNX Runtime alone.

    pip install onnxruntime numpy pillow
    python predict.py photo.jpg more/*.png [--model model.onnx] [--json]

Each image is prepared as the model was trained (the model's metadata, "preprocess"): decoded
upright at no more than the size needed, made gray or RGB (transparency over white), and resized
to the model's input ("pad" with the photo's own background, "crop" or "squash"). The model does
the rest: normalisation, flip TTA, calibrated logits and the "none of these" score. The answers
are sightline's for models that take whole images (preprocess "fit": "frame", every folder of
photos); a model framed around one object (Fashion-MNIST, MNIST: "object" or "digit") needs
sightline's framing to match (`sightline predict`), and this script says so.
(Written by `sightline export --format package`; it never imports sightline.)
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


def prepare(path, p):
    img = Image.open(path)
    side, (w, h) = max(512, 4 * max(p["size"])), img.size  # decoded no larger than needed
    if img.format == "JPEG" and side < max(w, h):
        s = side / max(w, h)
        img.draft(img.mode, (max(1, int(w * s)), max(1, int(h * s))))
    img.seek(0)
    img.load()
    if max(img.size) // side >= 2:
        try:
            info, img = img.info, img.reduce(max(img.size) // side)
            img.info = dict(info)  # the EXIF orientation, applied next
        except ValueError:  # a mode reduce() lacks: kept whole
            pass
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
    img = img.convert("L" if p["channels"] == 1 else "RGB")
    th, tw = p["size"]
    if img.size != (tw, th):
        big = min(img.size) >= 4 * max(th, tw)
        bicubic = p.get("interpolation") == "bicubic"
        how = Image.LANCZOS if big else Image.BICUBIC if bicubic else Image.BILINEAR
        gray = np.asarray(img.convert("L"))
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        fill = 255 if np.median(border) > 127 else 0
        fill = (fill,) * 3 if p["channels"] == 3 else fill
        if p["resize"] == "squash":
            img = img.resize((tw, th), how, reducing_gap=3.0)
        elif p["resize"] == "crop":
            img = ImageOps.fit(img, (tw, th), method=how)
        else:
            img = ImageOps.pad(img, (tw, th), method=how, color=fill)
    a = np.asarray(img, dtype=np.uint8)
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)).copy()


def answers(session, meta, x):
    """sightline's answers for prepared images ``x``, uint8 (N, C, H, W) as ``prepare`` makes
    them: the class, its calibrated probability, "none of these" and every class's probability."""
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"images": x}), strict=True))
    logits = out["logits"].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    threshold, classes = (meta.get("ood") or {}).get("threshold"), meta["classes"]
    found = []
    for i, p in enumerate(probs):
        k = int(p.argmax())
        score = float(out["ood_score"][i]) if "ood_score" in out else None
        unknown = threshold is not None and score is not None and score > threshold
        found.append({"class": classes[k], "probability": float(p[k]), "unknown": unknown,
                      "ood_score": score,
                      "probabilities": dict(zip(classes, p.tolist(), strict=True))})  # fmt: skip
    return found


def load(model):
    """The ONNX Runtime session of ``model`` and sightline's metadata in it."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session, json.loads(session.get_modelmeta().custom_metadata_map["sightline"])


def main(argv):
    as_json = "--json" in argv
    args = [a for a in argv if a != "--json"]
    model = Path(__file__).with_name("model.onnx")
    if "--model" in args:
        i = args.index("--model")
        model, args = Path(args[i + 1]), args[:i] + args[i + 2 :]
    session, meta = load(model)
    p = meta["preprocess"]
    if p.get("fit", "frame") != "frame" or p.get("dark_background"):
        print("note: this model frames each object as its training data did; predict.py "
              "resizes whole images, so answers on photos may differ from sightline's", file=sys.stderr)  # fmt: skip
    found = []
    for path in args:
        try:
            x = prepare(path, p)[None]
        except Exception as e:  # noqa: BLE001 - any unreadable file is reported, the rest go on
            print(f"{path}: cannot read: {e}", file=sys.stderr)
            continue
        answer = {"file": path, **answers(session, meta, x)[0]}
        found.append(answer)
        if not as_json:
            k = answer["class"]
            said = f"none of these (nearest {k})" if answer["unknown"] else k
            print(f"{path}\t{said}\t{answer['probability']:.1%}")
    if as_json:
        print(json.dumps(found, indent=2))
    return 0 if found or not args else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
