"""Lip backends on real video: detection rate, confidence, speed and box agreement.

    python -m avse.bin.benchmark_lips VIDEO_OR_DIR [...] [--backends haar landmarks] \\
        [--max_clips N] [--scale 1.0] [--rotate 0] [--json out.json]

A script, not a test: every video (a directory is searched for ``.mpg .mp4 .avi .mov
.mkv .webm`` files) is decoded once, optionally degraded (``--scale``: frames resized by
this factor, e.g. 0.5 for smaller faces; ``--rotate``: in-plane rotation in degrees,
about the frame centre) and run through each backend. Per clip and in total it prints:

* ``found``: fraction of 25 fps frames with confidence above 0 (the ``utt2lip_det``
  of :mod:`avse.bin.extract_lips`); ``det``: frames where the detector itself fired
  (``landmarks`` also follows the face through missed frames: ``found - det``);
* ``conf``: mean per-frame confidence;
* ``fps``: frames per second of the backend alone (decoding excluded; one process,
  ``OMP_NUM_THREADS`` as set);
* ``dev``: with ``haar`` and ``landmarks`` both run, the median distance between their
  smoothed mouth-box centres, as a fraction of the ``landmarks`` crop side (how far
  the face-box geometry lands from the lips that the landmarks find).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

VIDEO_EXTS = (".mpg", ".mp4", ".avi", ".mov", ".mkv", ".webm")


def _haar(frames, fps):
    from avse.lips.haar import haar_lips

    lips, conf, boxes = haar_lips(frames, fps)
    return conf, conf > 0, boxes


def _landmarks(frames, fps):
    from avse.lips.dlib_face import load_face_models
    from avse.lips.landmarks import DETECTED, landmark_lips

    lips, conf, boxes, track = landmark_lips(frames, fps, load_face_models())
    return conf, track.status == DETECTED, boxes


# name -> frames, fps -> (conf (T,), detected (T,) bool, smoothed boxes (T, 3))
DETAILED = {"haar": _haar, "landmarks": _landmarks}


def find_videos(paths, max_clips: int = 0) -> list:
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(VIDEO_EXTS))
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise SystemExit(f"{p}: not found")
    return out[:max_clips] if max_clips > 0 else out


def degrade(frames: np.ndarray, scale: float = 1.0, rotate: float = 0.0) -> np.ndarray:
    """Resize ``(T, H, W)`` frames by ``scale`` and rotate them by ``rotate`` degrees."""
    import cv2

    if scale != 1.0:
        h, w = frames.shape[1:]
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    if rotate:
        h, w = frames.shape[1:]
        M = cv2.getRotationMatrix2D((w / 2, h / 2), rotate, 1.0)
        frames = np.stack([cv2.warpAffine(f, M, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in frames])
    return frames


def run_clip(frames: np.ndarray, fps: float, backends) -> dict:
    """One clip through each backend -> ``{backend: stats}`` (``error`` when it failed)."""
    res, boxes = {}, {}
    for name in backends:
        t0 = time.perf_counter()
        try:
            conf, det, b = DETAILED[name](frames, fps)
        except Exception as e:  # a clip without a face must not stop the benchmark
            res[name] = {"frames": 0, "error": str(e)}
            continue
        sec = time.perf_counter() - t0
        boxes[name] = b
        res[name] = {"frames": len(conf), "found": float(np.mean(conf > 0)), "det": float(np.mean(det)),
                     "conf": float(np.mean(conf)), "seconds": sec}
    if "haar" in boxes and "landmarks" in boxes:
        h, m = boxes["haar"], boxes["landmarks"]
        res["landmarks"]["dev"] = float(np.median(np.hypot(*(h[:, :2] - m[:, :2]).T) / m[:, 2]))
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="video files or directories of videos")
    p.add_argument("--backends", nargs="+", default=list(DETAILED), choices=list(DETAILED))
    p.add_argument("--max_clips", type=int, default=0, help="0: all")
    p.add_argument("--scale", type=float, default=1.0, help="resize the frames by this factor")
    p.add_argument("--rotate", type=float, default=0.0, help="rotate the frames (degrees)")
    p.add_argument("--json", help="write the per-clip and total figures here")
    args = p.parse_args(argv)
    from avse.io.video import read_video

    videos = find_videos(args.paths, args.max_clips)
    if "landmarks" in args.backends:
        from avse.lips.dlib_face import FaceModelsMissing, load_face_models

        try:
            load_face_models()  # loaded once, outside the timing
        except FaceModelsMissing as e:
            print(f"landmarks left out: {e}")
            args.backends = [b for b in args.backends if b != "landmarks"]
    if not videos:
        raise SystemExit("no videos found")
    rows = {}
    head = f"{'clip':<24}" + "".join(f" | {b:>9}: found   det  conf     fps" for b in args.backends)
    print(head + ("   dev" if len(set(args.backends) & {"haar", "landmarks"}) == 2 else ""))
    for v in videos:
        frames, fps = read_video(v, gray=True)
        r = rows[os.path.basename(v)] = run_clip(degrade(frames, args.scale, args.rotate), fps, args.backends)
        print(f"{os.path.basename(v)[:24]:<24}" + "".join(_cells(r[b]) for b in args.backends)
              + (f" {r['landmarks']['dev']:5.3f}" if "dev" in r.get("landmarks", {}) else ""))
    total = {}
    for b in args.backends:
        ok = [r[b] for r in rows.values() if "error" not in r[b]]
        n = sum(s["frames"] for s in ok)
        total[b] = {"clips": len(rows), "failed": len(rows) - len(ok), "frames": n,
                    **{k: sum(s[k] * s["frames"] for s in ok) / max(n, 1) for k in ("found", "det", "conf")},
                    "fps": n / max(sum(s["seconds"] for s in ok), 1e-9)}
    print(f"{'total':<24}" + "".join(_cells({**t, "seconds": t["frames"] / t["fps"] if t["fps"] else 0})
                                     for t in total.values()))
    for b, t in total.items():
        if t["failed"]:
            print(f"{b}: {t['failed']} of {t['clips']} clips failed (no face)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "clips": rows, "total": total}, f, indent=1)
    return 0


def _cells(s: dict) -> str:
    if "error" in s:
        return f" | {'failed':>32}"
    fps = s["frames"] / max(s["seconds"], 1e-9)
    return f" | {s['found']:16.3f} {s['det']:5.3f} {s['conf']:5.2f} {fps:7.1f}"


if __name__ == "__main__":
    sys.exit(main())
